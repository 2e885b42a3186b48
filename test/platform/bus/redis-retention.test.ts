import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createRedisBus, redisBusKeys, type RedisBusOptions } from '../../../src/platform/bus/redis.ts';
import {
  registerEphemeralGroup,
  sweepEphemeralGroups,
  touchEphemeralGroup,
  trimStream,
} from '../../../src/platform/bus/redis-retention.ts';
import { deleteRedisNamespace, redisConsumerExists, redisTestOptions } from '../../conformance/bus.fixtures.ts';
import { probeService } from '../../support/services.ts';

/**
 * What the Redis stream keeps: trimming deletes exactly the entries every group has acked, and
 * ephemeral groups whose subscribers stopped renewing them are destroyed by housekeeping.
 */
const svc = await probeService('redis');

const QUICK = { timeout: 5_000, interval: 10 } as const;
const ACK_WAIT_MS = 1_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Opened {
  readonly bus: EventBus;
  readonly redis: Redis;
  readonly keys: ReturnType<typeof redisBusKeys>;
  readonly streamKey: string;
}

/** A bus whose housekeeping does not run unless a test asks for it, so each trim is the test's own. */
const openBus = async (extra: Partial<RedisBusOptions> = {}): Promise<Opened> => {
  const options = { ...redisTestOptions(svc.url), maintenanceIntervalMs: 0, ...extra };
  const bus = await createRedisBus(options);
  const redis = new Redis(svc.url);
  cleanups.push(async () => {
    await bus.close();
    await redis.quit();
    await deleteRedisNamespace(svc.url, options.streamKey);
  });
  return { bus, redis, keys: redisBusKeys(options.streamKey), streamKey: options.streamKey };
};

/** Stream entry ids, oldest first. */
const entryIds = async (redis: Redis, stream: string): Promise<string[]> => (await redis.xrange(stream, '-', '+')).map(([id]) => id);

/** Publishes `data` and returns the stream id it got (the newest entry). */
const publishEntry = async ({ bus, redis, keys }: Opened, data: string): Promise<string> => {
  await bus.publish({ subject: 'jobs.run', data, id: data });
  const [newest] = await redis.xrevrange(keys.stream, '+', '-', 'COUNT', 1);
  if (newest === undefined) throw new Error('the stream is empty after a publish');
  return newest[0];
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!svc.ok)('redis event bus stream retention', () => {
  it('trims only the entries every group has acked; a group that has not read them keeps them', async () => {
    const opened = await openBus();
    const { bus, redis, keys } = opened;
    const offline = await bus.subscribe({ consumer: 'offline', subject: 'jobs.run' }, async () => undefined);
    await offline.stop();
    const fast: Delivery[] = [];
    await bus.subscribe({ consumer: 'fast', subject: 'jobs.run', ackWaitMs: ACK_WAIT_MS }, async (d) => void fast.push(d));
    const ids = [await publishEntry(opened, 'e1'), await publishEntry(opened, 'e2'), await publishEntry(opened, 'e3')];
    await vi.waitFor(async () => expect(await bus.lag('fast')).toBe(0), QUICK);
    expect(fast).toHaveLength(3);

    expect(await trimStream(redis, keys)).toBe(0);
    expect(await entryIds(redis, keys.stream)).toEqual(ids);

    // The offline group catches up: now every group has acked everything.
    const caughtUp: Delivery[] = [];
    await bus.subscribe({ consumer: 'offline', subject: 'jobs.run', ackWaitMs: ACK_WAIT_MS }, async (d) => void caughtUp.push(d));
    await vi.waitFor(async () => expect(await bus.lag('offline')).toBe(0), QUICK);
    expect(caughtUp.map((d) => d.data)).toEqual(['e1', 'e2', 'e3']);
    expect(await trimStream(redis, keys)).toBe(3);
    expect(await entryIds(redis, keys.stream)).toEqual([]);

    // What comes later is kept until it is acked, then goes the same way.
    const e4 = await publishEntry(opened, 'e4');
    await vi.waitFor(async () => expect((await bus.lag('fast')) + (await bus.lag('offline'))).toBe(0), QUICK);
    expect(await trimStream(redis, keys)).toBe(1);
    expect(await entryIds(redis, keys.stream)).not.toContain(e4);
  });

  it('keeps an entry pending in a group, and every entry after it, until it is acked', async () => {
    const opened = await openBus();
    const { bus, redis, keys } = opened;
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handled: string[] = [];
    const workerOptions = { consumer: 'workers', subject: 'jobs.run', ackWaitMs: ACK_WAIT_MS, concurrency: 4 } as const;
    const worker = await bus.subscribe(workerOptions, async (d) => {
      if (d.data === 'e2' && d.attempt === 1) await held;
      handled.push(String(d.data));
    });
    const ids = [];
    for (const data of ['e1', 'e2', 'e3', 'e4']) ids.push(await publishEntry(opened, data));
    await vi.waitFor(() => expect(handled).toEqual(['e1', 'e3', 'e4']), QUICK);
    expect(await bus.lag('workers')).toBe(1);

    // e1 was acked by the only group; e2 is pending; e3 and e4 were acked but lie after it.
    expect(await trimStream(redis, keys)).toBe(1);
    expect(await entryIds(redis, keys.stream)).toEqual(ids.slice(1));

    // The subscriber stops with e2 in flight (as if it died): e2 stays in the stream for whoever reclaims it.
    await worker.stop();
    release();
    expect(await trimStream(redis, keys)).toBe(0);
    const reclaimed: Delivery[] = [];
    await bus.subscribe(workerOptions, async (d) => void reclaimed.push(d));
    await vi.waitFor(() => expect(reclaimed).toHaveLength(1), { timeout: ACK_WAIT_MS * 5, interval: 20 });
    expect(reclaimed[0]).toMatchObject({ data: 'e2', attempt: 2 });
    await vi.waitFor(async () => expect(await bus.lag('workers')).toBe(0), QUICK);
    expect(await trimStream(redis, keys)).toBe(3);
    expect(await redis.xlen(keys.stream)).toBe(0);
  });

  it('empties the stream when no group exists, since a group created later starts at its end', async () => {
    const opened = await openBus();
    await publishEntry(opened, 'e1');
    await publishEntry(opened, 'e2');
    expect(await trimStream(opened.redis, opened.keys)).toBe(2);
    expect(await opened.redis.xlen(opened.keys.stream)).toBe(0);
    expect(await trimStream(opened.redis, opened.keys)).toBe(0);
  });

  it('with a max age also drops entries no group has read once they are older than that', async () => {
    const opened = await openBus();
    const { bus, redis, keys } = opened;
    const offline = await bus.subscribe({ consumer: 'offline', subject: 'jobs.run' }, async () => undefined);
    await offline.stop();
    await publishEntry(opened, 'old');
    await sleep(1_500);
    const young = await publishEntry(opened, 'young');
    expect(await trimStream(redis, keys, 60_000)).toBe(0);
    expect(await trimStream(redis, keys, 1_000)).toBe(1);
    expect(await entryIds(redis, keys.stream)).toEqual([young]);
  });

  it('trims on its own every maintenance interval', async () => {
    const opened = await openBus({ maintenanceIntervalMs: 100 });
    const seen: Delivery[] = [];
    await opened.bus.subscribe({ consumer: 'fast', subject: 'jobs.run', ackWaitMs: ACK_WAIT_MS }, async (d) => void seen.push(d));
    for (const data of ['e1', 'e2', 'e3']) await publishEntry(opened, data);
    await vi.waitFor(() => expect(seen).toHaveLength(3), QUICK);
    await vi.waitFor(async () => expect(await opened.redis.xlen(opened.keys.stream)).toBe(0), QUICK);
  });

  it('destroys an ephemeral group once its deadline passes, and only then', async () => {
    const { redis, keys, streamKey } = await openBus();
    // Registered as a subscriber would, which then stops renewing (its process froze or died).
    expect(await registerEphemeralGroup(redis, keys, 'cache-frozen', 'cache.invalidate', 100_000)).toBeUndefined();
    expect(await registerEphemeralGroup(redis, keys, 'cache-alive', 'cache.invalidate', 100_000)).toBeUndefined();
    expect(await sweepEphemeralGroups(redis, keys)).toBe(0);
    expect(await redisConsumerExists(svc.url, streamKey, 'cache-frozen')).toBe(true);
    const [seconds] = await redis.time();
    const now = Number(seconds) * 1_000;
    expect(Number(await redis.zscore(keys.ephemeral, 'cache-frozen')) - now).toBeGreaterThan(90_000);

    await redis.zadd(keys.ephemeral, now - 1_000, 'cache-frozen');
    expect(await touchEphemeralGroup(redis, keys, 'cache-alive', 100_000)).toBe(true);
    expect(await sweepEphemeralGroups(redis, keys)).toBe(1);
    expect(await redisConsumerExists(svc.url, streamKey, 'cache-frozen')).toBe(false);
    expect(await redisConsumerExists(svc.url, streamKey, 'cache-alive')).toBe(true);
    // A renewal that comes too late does not bring the group back: its subscriber registers it again.
    expect(await touchEphemeralGroup(redis, keys, 'cache-frozen', 100_000)).toBe(false);
    expect(await redisConsumerExists(svc.url, streamKey, 'cache-frozen')).toBe(false);
  });

  it('registering an expired ephemeral group under its name starts it afresh at the end of the stream', async () => {
    const opened = await openBus();
    const { redis, keys } = opened;
    await registerEphemeralGroup(redis, keys, 'cache-dead', 'cache.invalidate', 100_000);
    await publishEntry(opened, 'left-behind');
    const [seconds] = await redis.time();
    await redis.zadd(keys.ephemeral, Number(seconds) * 1_000 - 1_000, 'cache-dead');
    await registerEphemeralGroup(redis, keys, 'cache-dead', 'cache.invalidate', 100_000);
    const read = await redis.xreadgroup('GROUP', 'cache-dead', 'reader', 'COUNT', 10, 'STREAMS', keys.stream, '>');
    expect(read).toBeNull();
  });

  it('lets a running ephemeral subscriber recreate its group after it was destroyed behind its back', async () => {
    const errors: string[] = [];
    const opened = await openBus({ onError: (error) => void errors.push(String(error)) });
    const { bus, redis, keys, streamKey } = opened;
    const seen: unknown[] = [];
    await bus.subscribe(
      { consumer: 'cache-node', subject: 'cache.invalidate', ephemeral: true, ackWaitMs: ACK_WAIT_MS },
      async (d) => void seen.push(d.data),
    );
    await bus.publish({ subject: 'cache.invalidate', data: 'before' });
    await vi.waitFor(() => expect(seen).toEqual(['before']), QUICK);
    await redis.xgroup('DESTROY', keys.stream, 'cache-node');
    await vi.waitFor(async () => expect(await redisConsumerExists(svc.url, streamKey, 'cache-node')).toBe(true), QUICK);
    await vi.waitFor(() => expect(errors.join('\n')).toMatch(/cache-node.*recreated/), QUICK);
    await bus.publish({ subject: 'cache.invalidate', data: 'after' });
    await vi.waitFor(() => expect(seen).toEqual(['before', 'after']), QUICK);
  });
});
