import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNatsBus } from '../../../src/platform/bus/nats.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { deleteNatsStream, natsTestOptions } from '../../conformance/bus.fixtures.ts';
import { probeService, uniqueName } from '../../support/services.ts';

/** What only the NATS adapter does: its stream, foreign messages, consumer settings. */
const svc = await probeService('nats');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const openBus = async (): Promise<{ bus: EventBus; stream: string; prefix: string }> => {
  const options = natsTestOptions(svc.url);
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
  });
});
