import { describe } from 'vitest';
import { probeService } from '../support/services.ts';
import { natsBusFixture, natsProcessTarget } from './bus.fixtures.ts';
import { busSuite } from './bus.suite.ts';

const svc = await probeService('nats');

describe.skipIf(!svc.ok)('nats event bus', () => {
  // JetStream pull requests last at least 1 s and cannot be cancelled; with a 2 s ack wait a
  // stopped subscriber's last request has expired before its deliveries come due (see nats.ts).
  busSuite('nats', () => natsBusFixture(svc.url), {
    ackWaitMs: 2_000,
    processTarget: () => natsProcessTarget(svc.url),
  });
});
