import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createRedisBus, redisBusKeys, type RedisBusOptions } from '../../../src/platform/bus/redis.ts';
import { deleteRedisNamespace, redisTestOptions } from '../../conformance/bus.fixtures.ts';
import { probeService } from '../../support/services.ts';

/** What only the Redis adapter does: its keys, foreign entries, reader bookkeeping, dedup window. */
const svc = await probeService('redis');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const openBus = async (extra: Partial<RedisBusOptions> = {}): Promise<{ bus: EventBus; redis: Redis; streamKey: string }> => {
  const options = { ...redisTestOptions(svc.url), ...extra };
  const bus = await createRedisBus(options);
  const redis = new Redis(svc.url);
  cleanups.push(async () => {
    await bus.close();
    await redis.quit();
    await deleteRedisNamespace(svc.url, options.streamKey);
  });
  return { bus, redis, streamKey: options.streamKey };
};

/** Readers (XINFO CONSUMERS) of a group. */
const readers = async (redis: Redis, streamKey: string, group: string): Promise<number> =>
  ((await redis.call('XINFO', 'CONSUMERS', streamKey, group)) as unknown[]).length;

describe('createRedisBus options', () => {
  it('rejects a stream key that is empty or would match other keys', async () => {
    for (const streamKey of ['', 'a b', 'bus*']) {
      await expect(createRedisBus({ url: svc.url, streamKey })).rejects.toMatchObject({ code: 'BUS_INVALID_OPTIONS' });
    }
  });

  it('fails when Redis is unreachable', async () => {
    await expect(createRedisBus({ url: 'redis://127.0.0.1:1', streamKey: 'x' })).rejects.toThrow();
  });
});

describe.skipIf(!svc.ok)('redis event bus', () => {
  it('delivers an entry another producer added without JSON or headers, as its text', async () => {
    const { bus, redis, streamKey } = await openBus();
    const received: Delivery[] = [];
    await bus.subscribe({ consumer: 'reader', subject: 'raw.>' }, async (delivery) => void received.push(delivery));
    const entryId = await redis.xadd(streamKey, '*', 's', 'raw.text', 'd', 'plain words', 'h', 'not json');
    await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: 5_000 });
    expect(received[0]).toEqual({ subject: 'raw.text', data: 'plain words', id: entryId, key: undefined, headers: {}, attempt: 1 });
  });

  it('forgets a stopped reader that holds nothing, but keeps one that holds an entry for reclaim', async () => {
    const { bus, redis, streamKey } = await openBus();
    const idle = await bus.subscribe({ consumer: 'workers', subject: 'jobs.run' }, async () => undefined);
    // A reader joins its group once it has read something.
    await bus.publish({ subject: 'jobs.run', data: 0 });
    await vi.waitFor(async () => expect(await bus.lag('workers')).toBe(0), { timeout: 5_000 });
    expect(await readers(redis, streamKey, 'workers')).toBe(1);
    await idle.stop();
    expect(await readers(redis, streamKey, 'workers')).toBe(0);

    let started = false;
    const busy = await bus.subscribe({ consumer: 'workers', subject: 'jobs.run', ackWaitMs: 1_000 }, async () => {
      started = true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    await bus.publish({ subject: 'jobs.run', data: 1 });
    await vi.waitFor(() => expect(started).toBe(true), { timeout: 5_000 });
    await busy.stop();
    expect(await readers(redis, streamKey, 'workers')).toBe(1);
    expect(await bus.lag('workers')).toBe(1);
  });

  it('stores a repeated id once within the dedup window and every time without one', async () => {
    const { bus, redis, streamKey } = await openBus();
    await bus.publish({ subject: 'a.b', data: 1, id: 'same' });
    await bus.publish({ subject: 'a.b', data: 2, id: 'same' });
    expect(await redis.xlen(streamKey)).toBe(1);
    const ttl = await redis.pttl(redisBusKeys(streamKey).dedup('same'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120_000);

    const plain = await openBus({ dedupWindowMs: 0 });
    await plain.bus.publish({ subject: 'a.b', data: 1, id: 'same' });
    await plain.bus.publish({ subject: 'a.b', data: 2, id: 'same' });
    expect(await plain.redis.xlen(plain.streamKey)).toBe(2);
  });
});
