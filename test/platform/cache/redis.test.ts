import { describe, expect, it, vi } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import type { EventBus } from '../../../src/platform/bus/port.ts';
import { CacheUnavailableError } from '../../../src/platform/cache/errors.ts';
import { createRedisCache, type CacheLogger } from '../../../src/platform/cache/redis.ts';
import type { Logger } from '../../../src/platform/logger.ts';
import { probeService } from '../../support/services.ts';
import { COMMAND_TIMEOUT_MS, recordingLogger, useRedisCacheHarness } from './redis-harness.ts';

const redis = await probeService('redis');

/** A port nothing listens on: bind one, note it, close it. */
const closedPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

// A pino logger must be accepted where the cache asks for a CacheLogger.
const _pinoFits = (logger: Logger): CacheLogger => logger;
void _pinoFits;

/** Generous ceiling for "did not hang": the command timeout plus scheduling slack on a busy machine. */
const HANG_BOUND_MS = COMMAND_TIMEOUT_MS + 1500;

const timed = async <T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
};

describe.skipIf(!redis.ok)('createRedisCache', () => {
  let bus: EventBus;
  const h = useRedisCacheHarness(redis.url, async () => {
    bus = createMemoryBus();
    return { next: async () => bus, cleanup: () => bus.close() };
  });

  it('bounds staleness by the L1 TTL when an invalidation never arrives', async () => {
    const prefix = h.newPrefix();
    const b = await h.replica(prefix, { l1TtlMs: 200 });
    await b.set('k', 'old');
    await h.raw().set(`${prefix}k`, JSON.stringify('changed-without-invalidation'));
    expect(await b.get('k')).toBe('old');
    await vi.waitFor(async () => expect(await b.get('k')).toBe('changed-without-invalidation'), {
      timeout: 3000,
      interval: 25,
    });
  });

  it('bounds the L1 by maxL1Entries, evicting the least recently used', async () => {
    const prefix = h.newPrefix();
    const proxy = await h.proxy();
    const cache = await h.replica(prefix, { url: proxy.url, maxL1Entries: 2 });
    await cache.set('a', 1);
    await cache.set('b', 2);
    expect(await cache.get('a')).toBe(1);
    await cache.set('c', 3); // evicts b, the least recently used
    await proxy.kill(); // from here only L1 can answer
    expect(await cache.get('a')).toBe(1);
    expect(await cache.get('c')).toBe(3);
    expect(await cache.get('b')).toBeUndefined();
  });

  it('treats reads as misses, without hanging, when Redis is unreachable; writes fail with CACHE_UNAVAILABLE', async () => {
    const logger = recordingLogger();
    const cache = await h.replica(h.newPrefix(), {
      url: `redis://127.0.0.1:${await closedPort()}`,
      logger,
    });
    const read = await timed(() => cache.get('k'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeLessThan(HANG_BOUND_MS);
    const again = await timed(() => cache.get('k'));
    expect(again.value).toBeUndefined();
    expect(again.ms).toBeLessThan(HANG_BOUND_MS);

    const write = await timed(() => cache.set('k', 1).catch((e: unknown) => e));
    expect(write.value).toBeInstanceOf(CacheUnavailableError);
    expect(write.value).toMatchObject({
      code: 'CACHE_UNAVAILABLE',
      status: 503,
      operation: 'set',
      key: 'k',
    });
    expect(write.ms).toBeLessThan(HANG_BOUND_MS);
    await expect(cache.delete('k')).rejects.toBeInstanceOf(CacheUnavailableError);
    const ping = await timed(() => cache.ping().catch((e: unknown) => e));
    expect(ping.value).toBeInstanceOf(Error);
    expect(ping.ms).toBeLessThan(HANG_BOUND_MS);
    // Logged once for the outage, not once per read.
    expect(logger.messages.filter((m) => m.startsWith('shared cache unreachable'))).toHaveLength(1);
  });

  it('serves L1 and misses within the command timeout when Redis stops answering, then recovers', async () => {
    const prefix = h.newPrefix();
    const proxy = await h.proxy();
    const logger = recordingLogger();
    const cache = await h.replica(prefix, { url: proxy.url, logger });
    await cache.set('warm', 'in-l1');

    proxy.hold(); // the connection stays up, replies never come
    expect(await cache.get('warm')).toBe('in-l1');
    const cold = await timed(() => cache.get('cold'));
    expect(cold.value).toBeUndefined();
    expect(cold.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 5);
    expect(cold.ms).toBeLessThan(HANG_BOUND_MS);
    const write = await timed(() => cache.set('cold', 1).catch((e: unknown) => e));
    expect(write.value).toBeInstanceOf(CacheUnavailableError);
    expect(write.ms).toBeLessThan(HANG_BOUND_MS);

    await proxy.kill(); // now the connection drops
    expect(await cache.get('cold')).toBeUndefined();
    expect(await cache.get('warm')).toBe('in-l1');

    await h.raw().set(`${prefix}cold`, JSON.stringify('back'));
    await proxy.restore();
    await vi.waitFor(async () => expect(await cache.get('cold')).toBe('back'), {
      timeout: 10_000,
      interval: 50,
    });
    await cache.set('after', 'ok');
    expect(JSON.parse((await h.raw().get(`${prefix}after`)) ?? 'null')).toBe('ok');
    expect(logger.messages.filter((m) => m.startsWith('shared cache unreachable')).length).toBeGreaterThanOrEqual(1);
  });

  it('stores JSON under the key prefix with the TTL in Redis', async () => {
    const prefix = h.newPrefix();
    const cache = await h.replica(prefix, { defaultTtlMs: 30_000 });
    await cache.set('obj', { a: [1, 2] });
    await cache.set('short', 1, { ttlMs: 5000 });
    await cache.set('forever', 1, { ttlMs: 0 });
    expect(await h.raw().get(`${prefix}obj`)).toBe('{"a":[1,2]}');
    const pttl = await h.raw().pttl(`${prefix}obj`);
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect(await h.raw().pttl(`${prefix}short`)).toBeLessThanOrEqual(5000);
    expect(await h.raw().pttl(`${prefix}forever`)).toBe(-1);
    expect(cache.kind).toBe('redis');
  });

  it('uses a Redis client it is given without closing it', async () => {
    const prefix = h.newPrefix();
    const client = new Redis(redis.url);
    try {
      const cache = await createRedisCache({
        redis: client,
        keyPrefix: prefix,
        bus,
        maxL1Entries: 10,
        defaultTtlMs: 1000,
      });
      await cache.set('k', 'v');
      await cache.close();
      expect(client.status).toBe('ready');
      expect(await client.get(`${prefix}k`)).toBe('"v"');
    } finally {
      await client.quit();
    }
  });

  it('logs and ignores a malformed invalidation', async () => {
    const logger = recordingLogger();
    const m = await h.replica(h.newPrefix(), { logger });
    await bus.publish({
      subject: 'cache.invalidate',
      data: { keys: 'not-a-list' },
    });
    await h.drained(m);
    expect(logger.messages).toContain('ignored a malformed cache invalidation');
  });

  it('refuses invalid options', async () => {
    const base = {
      url: redis.url,
      keyPrefix: h.newPrefix(),
      bus,
      maxL1Entries: 10,
      defaultTtlMs: 1000,
    };
    await expect(createRedisCache({ ...base, maxL1Entries: 0 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, l1TtlMs: 0 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, defaultTtlMs: -5 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, commandTimeoutMs: 0 })).rejects.toThrow(RangeError);
  });
});
