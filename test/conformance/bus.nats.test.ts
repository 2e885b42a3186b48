import { afterEach, describe, expect, it } from 'vitest';
import { connect, nanos } from '@nats-io/transport-node';
import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import { createNatsBus, type NatsBusOptions } from '../../src/platform/bus/nats.ts';
import type { EventBus } from '../../src/platform/bus/port.ts';
import { probeService } from '../support/services.ts';
import { deleteNatsStream, natsBusFixture, natsProcessTarget, natsTestOptions } from './bus.fixtures.ts';
import { busSuite } from './bus.suite.ts';

const svc = await probeService('nats');

const streamInfo = async (stream: string): Promise<StreamInfo> => {
  const nc = await connect({ servers: svc.url });
  try {
    return await (await jetstreamManager(nc)).streams.info(stream);
  } finally {
    await nc.close();
  }
};

describe.skipIf(!svc.ok)('nats event bus', () => {
  // JetStream pull requests last at least 1 s and cannot be cancelled; with a 2 s ack wait a
  // stopped subscriber's last request has expired before its deliveries come due (see nats.ts).
  busSuite('nats', () => natsBusFixture(svc.url), {
    ackWaitMs: 2_000,
    processTarget: () => natsProcessTarget(svc.url),
  });

  describe('stream limits (bus.max_age, bus.max_bytes, bus.duplicate_window)', () => {
    const opened: EventBus[] = [];
    const streams: string[] = [];
    const open = async (options: NatsBusOptions): Promise<EventBus> => {
      if (!streams.includes(options.stream)) streams.push(options.stream);
      const bus = await createNatsBus(options);
      opened.push(bus);
      return bus;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((bus) => bus.close()));
      await Promise.all(streams.splice(0).map((stream) => deleteNatsStream(svc.url, stream)));
    });

    it('creates the stream with the configured max age, size and duplicate window', async () => {
      const options = { ...natsTestOptions(svc.url), maxAgeMs: 3_600_000, maxBytes: 64 * 1024 * 1024, dedupWindowMs: 90_000 };
      await open(options);
      const { config } = await streamInfo(options.stream);
      expect(config.max_age).toBe(nanos(3_600_000));
      expect(config.max_bytes).toBe(64 * 1024 * 1024);
      expect(config.duplicate_window).toBe(nanos(90_000));
    });

    it('brings an existing stream to changed limits, keeping its messages; 0 means no limit', async () => {
      const options = { ...natsTestOptions(svc.url), maxAgeMs: 3_600_000, maxBytes: 1024 * 1024, dedupWindowMs: 60_000 };
      const first = await open(options);
      await first.publish({ subject: 'orders.placed', id: 'kept', data: { n: 1 } });
      await first.close();
      await open({ ...options, maxAgeMs: 0, maxBytes: 0, dedupWindowMs: 30_000 });
      const info = await streamInfo(options.stream);
      expect(info.config.max_age).toBe(0);
      expect(info.config.max_bytes).toBe(-1);
      expect(info.config.duplicate_window).toBe(nanos(30_000));
      expect(info.state.messages).toBe(1);
    });

    it('deduplicates ids within the configured window only', async () => {
      const options = { ...natsTestOptions(svc.url), dedupWindowMs: 1_000 };
      const bus = await open(options);
      await bus.publish({ subject: 'orders.placed', id: 'same', data: { n: 1 } });
      await bus.publish({ subject: 'orders.placed', id: 'same', data: { n: 1 } });
      expect((await streamInfo(options.stream)).state.messages).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      await bus.publish({ subject: 'orders.placed', id: 'same', data: { n: 1 } });
      expect((await streamInfo(options.stream)).state.messages).toBe(2);
    });

    it('refuses a duplicate window longer than messages are kept, before creating anything', async () => {
      const options = { ...natsTestOptions(svc.url), maxAgeMs: 60_000, dedupWindowMs: 120_000 };
      await expect(open(options)).rejects.toMatchObject({ code: 'BUS_INVALID_OPTIONS' });
      await expect(streamInfo(options.stream)).rejects.toThrow(/stream not found/i);
      streams.splice(streams.indexOf(options.stream), 1);
    });
  });
});
