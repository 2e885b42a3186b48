import { describe } from 'vitest';
import { probeService } from '../support/services.ts';
import { redisBusFixture, redisProcessTarget } from './bus.fixtures.ts';
import { busSuite } from './bus.suite.ts';

const svc = await probeService('redis');

describe.skipIf(!svc.ok)('redis event bus', () => {
  busSuite('redis', () => redisBusFixture(svc.url), { processTarget: () => redisProcessTarget(svc.url) });
});
