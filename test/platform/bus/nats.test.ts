import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNatsBus, type NatsBusOptions } from '../../../src/platform/bus/nats.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { deleteNatsStream, natsConsumerExists, natsTestOptions } from '../../conformance/bus.fixtures.ts';
import { probeService, uniqueName } from '../../support/services.ts';

/** What only the NATS adapter does: its stream, foreign messages, consumer settings. */
const svc = await probeService('nats');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const openBus = async (extra: Partial<NatsBusOptions> = {}): Promise<{ bus: EventBus; stream: string; prefix: string }> => {
  const options = { ...natsTestOptions(svc.url), ...extra };
  const bus = await createNatsBus(options);
  cleanups.push(async () => {
    await bus.close();
    await deleteNatsStream(svc.url, options.stream);
  });
  return { bus, stream: options.stream, prefix: options.subjectPrefix };
};

const withConnection = async <T>(work: (nc: Awaited<ReturnType<typeof connect>>) => Promise<T>): Promise<T> => {
  const nc = await connect({ servers: svc.url });
  try {
    return await work(nc);
  } finally {
    await nc.close();
  }
};

describe('createNatsBus options', () => {
  it('rejects a malformed stream name or subject prefix before connecting', async () => {
    await expect(createNatsBus({ url: 'nats://127.0.0.1:1', stream: 'a.b', subjectPrefix: 'ok' })).rejects.toMatchObject({
      code: 'BUS_INVALID_OPTIONS',
    });
    await expect(createNatsBus({ url: 'nats://127.0.0.1:1', stream: 'ok', subjectPrefix: 'a.>' })).rejects.toMatchObject({
      code: 'BUS_INVALID_OPTIONS',
    });
  });

  it('fails when the server is unreachable', async () => {
    await expect(createNatsBus({ url: 'nats://127.0.0.1:1', stream: 'ok', subjectPrefix: 'ok' })).rejects.toThrow();
  });
});

describe.skipIf(!svc.ok)('nats event bus', () => {
  it('refuses an existing stream that does not capture its prefix', async () => {
    const stream = uniqueName('bus');
    await withConnection(async (nc) => (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${stream}.other.>`] }));
    cleanups.push(() => deleteNatsStream(svc.url, stream));
    await expect(createNatsBus({ url: svc.url, stream, subjectPrefix: `${stream}.mine` })).rejects.toMatchObject({
      code: 'BUS_INVALID_OPTIONS',
    });
  });

  it('delivers a message another producer put on the stream without an id or JSON, as its text', async () => {
    const { bus, stream, prefix } = await openBus();
    const received: Delivery[] = [];
    await bus.subscribe({ consumer: 'reader', subject: 'raw.>' }, async (delivery) => void received.push(delivery));
    await withConnection(async (nc) => jetstream(nc).publish(`${prefix}.raw.text`, 'plain words'));
    await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 5_000 });
    expect(received[0]).toMatchObject({ subject: 'raw.text', data: 'plain words', key: undefined, headers: {}, attempt: 1 });
    expect(received[0]?.id).toBe(`${stream}:1`);
  });

  it('gives the durable consumer the latest subscriber ack wait', async () => {
    const { bus, stream } = await openBus();
    const first = await bus.subscribe({ consumer: 'waits', subject: 'a.b', ackWaitMs: 1_000 }, async () => undefined);
    await first.stop();
    await bus.subscribe({ consumer: 'waits', subject: 'a.b', ackWaitMs: 2_500 }, async () => undefined);
    const info = await withConnection(async (nc) => (await jetstreamManager(nc)).consumers.info(stream, 'waits'));
    expect(info.config.ack_wait).toBe(nanos(2_500));
    expect(info.config.filter_subject).toBe(`${stream}.a.b`);
    expect(info.config.inactive_threshold ?? 0).toBe(0);
  });

  it('gives an ephemeral consumer an inactivity threshold of the configured timeout, at least two ack waits', async () => {
    const { bus, stream } = await openBus({ ephemeralTimeoutMs: 1_000 });
    await bus.subscribe({ consumer: 'short', subject: 'a.b', ackWaitMs: 2_500, ephemeral: true }, async () => undefined);
    const info = await withConnection(async (nc) => (await jetstreamManager(nc)).consumers.info(stream, 'short'));
    expect(info.config.inactive_threshold).toBe(nanos(5_000));
    expect(info.config.deliver_policy).toBe(DeliverPolicy.New);

    const defaults = await openBus();
    await defaults.bus.subscribe({ consumer: 'long', subject: 'a.b', ackWaitMs: 2_000, ephemeral: true }, async () => undefined);
    const long = await withConnection(async (nc) => (await jetstreamManager(nc)).consumers.info(defaults.stream, 'long'));
    expect(long.config.inactive_threshold).toBe(nanos(30_000));
    await expect(createNatsBus({ ...natsTestOptions(svc.url), ephemeralTimeoutMs: 0 })).rejects.toMatchObject({
      code: 'BUS_INVALID_OPTIONS',
    });
  });

  it('lets a running ephemeral subscriber recreate its consumer after it was deleted behind its back', async () => {
    const errors: string[] = [];
    const { bus, stream } = await openBus({ onError: (error) => void errors.push(String(error)) });
    const seen: unknown[] = [];
    await bus.subscribe({ consumer: 'cache-node', subject: 'cache.invalidate', ackWaitMs: 2_000, ephemeral: true }, async (d) => {
      seen.push(d.data);
    });
    await bus.publish({ subject: 'cache.invalidate', data: 'before' });
    await vi.waitFor(() => expect(seen).toEqual(['before']), { timeout: 5_000 });
    await withConnection(async (nc) => (await jetstreamManager(nc)).consumers.delete(stream, 'cache-node'));
    await vi.waitFor(() => expect(errors.join('\n')).toMatch(/cache-node.*recreated/), { timeout: 10_000, interval: 20 });
    expect(await natsConsumerExists(svc.url, stream, 'cache-node')).toBe(true);
    await bus.publish({ subject: 'cache.invalidate', data: 'after' });
    await vi.waitFor(() => expect(seen).toEqual(['before', 'after']), { timeout: 5_000 });
  }, 20_000);
});
