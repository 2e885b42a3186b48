import { describe } from 'vitest';
import { probeService } from '../support/services.ts';
import { natsBusFixture } from './bus.fixtures.ts';
import { busSuite } from './bus.suite.ts';

const svc = await probeService('nats');

describe.skipIf(!svc.ok)('nats event bus', () => {
  busSuite('nats', () => natsBusFixture(svc.url));
});
