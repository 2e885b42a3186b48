import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import type { EventBus } from '../../../src/platform/bus/port.ts';
import { CacheUnavailableError } from '../../../src/platform/cache/errors.ts';
import type { Cache } from '../../../src/platform/cache/port.ts';
import { createRedisCache, type CacheLogger, type RedisCacheOptions } from '../../../src/platform/cache/redis.ts';
import type { Logger } from '../../../src/platform/logger.ts';
import { probeService, uniqueName } from '../../support/services.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const svc = await probeService('redis');

/** A port nothing listens on: bind one, note it, close it. */
const closedPort = async (): Promise<number> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
};

const recordingLogger = (): CacheLogger & { messages: string[] } => {
  const messages: string[] = [];
  return { messages, warn: (_bindings, message) => void messages.push(message) };
};

// A pino logger must be accepted where the cache asks for a CacheLogger.
const _pinoFits = (logger: Logger): CacheLogger => logger;
void _pinoFits;

const COMMAND_TIMEOUT_MS = 300;
/** Generous ceiling for "did not hang": the command timeout plus scheduling slack on a busy machine. */
const HANG_BOUND_MS = COMMAND_TIMEOUT_MS + 1500;

const timed = async <T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
};

describe.skipIf(!svc.ok)('createRedisCache', () => {
  let bus: EventBus;
  let raw: Redis;
  const prefixes: string[] = [];
  const caches: Cache[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(() => {
    bus = createMemoryBus();
    raw = new Redis(svc.url);
  });

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
  });

  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }
    await raw.quit();
    await bus.close();
  });

  const newPrefix = (): string => {
    const prefix = `${uniqueName('cachetest')}:`;
    prefixes.push(prefix);
    return prefix;
  };

  type Overrides = Partial<Omit<RedisCacheOptions, 'url' | 'redis'>> & { url?: string };
  const consumers = new Map<Cache, string>();
  /** A cache as one replica would build it; its node id is unique to this run. */
  const replica = async (keyPrefix: string, overrides: Overrides = {}): Promise<Cache> => {
    const { url = svc.url, nodeId = uniqueName('node'), ...rest } = overrides;
    const cache = await createRedisCache({
      nodeId,
      url,
      keyPrefix,
      bus,
      maxL1Entries: 100,
      // Long L1 TTL so that only an invalidation can explain a replica seeing a new value.
      l1TtlMs: 60_000,
      defaultTtlMs: 60_000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      logger: recordingLogger(),
      ...rest,
    });
    caches.push(cache);
    consumers.set(cache, `cache-${nodeId}`);
    return cache;
  };

  /** Resolves once `cache` has handled every invalidation published so far. */
  const drained = (cache: Cache): Promise<void> =>
    vi.waitFor(async () => expect(await bus.lag(consumers.get(cache) ?? '?')).toBe(0), { timeout: 5000, interval: 10 });

  it('serves a replica from its L1 until another replica sets the key, then reads the new value', async () => {
    const prefix = newPrefix();
    const a = await replica(prefix);
    const b = await replica(prefix);
    await a.set('k', { v: 1 });
    expect(await b.get('k')).toEqual({ v: 1 });

    // Behind the caches' back: B keeps answering from its L1.
    await raw.set(`${prefix}k`, JSON.stringify({ v: 'behind' }));
    expect(await b.get('k')).toEqual({ v: 1 });

    await a.set('k', { v: 2 });
    await drained(b);
    expect(await b.get('k')).toEqual({ v: 2 });
    expect(await a.get('k')).toEqual({ v: 2 });
  });

  it('drops a deleted key from every replica', async () => {
    const prefix = newPrefix();
    const a = await replica(prefix);
    const b = await replica(prefix);
    await b.set('k', 'cached');
    expect(await b.get('k')).toBe('cached');
    await a.delete('k');
    await drained(b);
    expect(await b.get('k')).toBeUndefined();
    expect(await raw.exists(`${prefix}k`)).toBe(0);
  });

  it('ignores its own invalidations and those of caches under another prefix', async () => {
    const prefix = newPrefix();
    const other = newPrefix();
    const a = await replica(prefix);
    const b = await replica(prefix);
    const c = await replica(other);
    await a.set('k', 'from-a');
    await c.set('k', 'from-c');
    await drained(a);
    await drained(b);
    await drained(c);
    await raw.set(`${prefix}k`, JSON.stringify('behind-a'));
    await raw.set(`${other}k`, JSON.stringify('behind-c'));

    await b.set('k', 'from-b');
    await drained(a);
    await drained(c);
    // A dropped its L1 copy on B's invalidation; C (other prefix) did not.
    expect(await a.get('k')).toBe('from-b');
    expect(await c.get('k')).toBe('from-c');
    // B's own invalidation left B's L1 alone: it still answers without reading Redis.
    await raw.set(`${prefix}k`, JSON.stringify('behind-b'));
    await drained(b);
    expect(await b.get('k')).toBe('from-b');
  });

  it('converges every replica on one value after concurrent writes from two replicas', async () => {
    const prefix = newPrefix();
    const a = await replica(prefix);
    const b = await replica(prefix);
    for (let round = 0; round < 10; round += 1) {
      await Promise.all([a.get('k'), b.get('k')]);
      await Promise.all([a.set('k', `a${round}`), b.set('k', `b${round}`), a.get('k'), b.get('k')]);
      await drained(a);
      await drained(b);
      const stored = JSON.parse((await raw.get(`${prefix}k`)) ?? 'null') as string;
      expect([`a${round}`, `b${round}`]).toContain(stored);
      expect(await a.get('k')).toBe(stored);
      expect(await b.get('k')).toBe(stored);
    }
  });

  it('does not keep a value in L1 that was read while an invalidation of that key arrived', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(svc.url);
    proxies.push(proxy);
    const a = await replica(prefix);
    const b = await replica(prefix, { url: proxy.url, commandTimeoutMs: 5000 });
    await a.set('k', 'old');
    await b.get('missing'); // B's connection is up

    proxy.hold();
    const inFlight = b.get('k');
    // Redis has answered B's read with 'old'; the reply waits in the proxy.
    await vi.waitFor(() => expect(proxy.heldText()).toContain('"old"'), { timeout: 5000, interval: 5 });
    await a.set('k', 'new');
    await drained(b);
    proxy.release();

    expect(await inFlight).toBe('old'); // it raced the write; what matters is what B keeps
    expect(await b.get('k')).toBe('new');
  });

  it('still invalidates other replicas when a write times out but lands in Redis', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(svc.url);
    proxies.push(proxy);
    const a = await replica(prefix, { url: proxy.url });
    const b = await replica(prefix);
    await b.set('k', 'old');
    expect(await b.get('k')).toBe('old');

    proxy.hold(); // A's SET reaches Redis; its reply never comes back
    await expect(a.set('k', 'new')).rejects.toBeInstanceOf(CacheUnavailableError);
    expect(JSON.parse((await raw.get(`${prefix}k`)) ?? 'null')).toBe('new');
    await drained(b);
    expect(await b.get('k')).toBe('new');
  });

  it('bounds staleness by the L1 TTL when an invalidation never arrives', async () => {
    const prefix = newPrefix();
    const b = await replica(prefix, { l1TtlMs: 200 });
    await b.set('k', 'old');
    await raw.set(`${prefix}k`, JSON.stringify('changed-without-invalidation'));
    expect(await b.get('k')).toBe('old');
    await vi.waitFor(async () => expect(await b.get('k')).toBe('changed-without-invalidation'), {
      timeout: 3000,
      interval: 25,
    });
  });

  it('bounds the L1 by maxL1Entries, evicting the least recently used', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(svc.url);
    proxies.push(proxy);
    const cache = await replica(prefix, { url: proxy.url, maxL1Entries: 2 });
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
    const cache = await replica(newPrefix(), { url: `redis://127.0.0.1:${await closedPort()}`, logger });
    const read = await timed(() => cache.get('k'));
    expect(read.value).toBeUndefined();
    expect(read.ms).toBeLessThan(HANG_BOUND_MS);
    const again = await timed(() => cache.get('k'));
    expect(again.value).toBeUndefined();
    expect(again.ms).toBeLessThan(HANG_BOUND_MS);

    const write = await timed(() => cache.set('k', 1).catch((e: unknown) => e));
    expect(write.value).toBeInstanceOf(CacheUnavailableError);
    expect(write.value).toMatchObject({ code: 'CACHE_UNAVAILABLE', status: 503, operation: 'set', key: 'k' });
    expect(write.ms).toBeLessThan(HANG_BOUND_MS);
    await expect(cache.delete('k')).rejects.toBeInstanceOf(CacheUnavailableError);
    // Logged once for the outage, not once per read.
    expect(logger.messages.filter((m) => m.startsWith('shared cache unreachable'))).toHaveLength(1);
  });

  it('serves L1 and misses within the command timeout when Redis stops answering, then recovers', async () => {
    const prefix = newPrefix();
    const proxy = await startTcpProxy(svc.url);
    proxies.push(proxy);
    const logger = recordingLogger();
    const cache = await replica(prefix, { url: proxy.url, logger });
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

    await raw.set(`${prefix}cold`, JSON.stringify('back'));
    await proxy.restore();
    await vi.waitFor(async () => expect(await cache.get('cold')).toBe('back'), { timeout: 10_000, interval: 50 });
    await cache.set('after', 'ok');
    expect(JSON.parse((await raw.get(`${prefix}after`)) ?? 'null')).toBe('ok');
    expect(logger.messages.filter((m) => m.startsWith('shared cache unreachable')).length).toBeGreaterThanOrEqual(1);
  });

  it('stores JSON under the key prefix with the TTL in Redis', async () => {
    const prefix = newPrefix();
    const cache = await replica(prefix, { defaultTtlMs: 30_000 });
    await cache.set('obj', { a: [1, 2] });
    await cache.set('short', 1, { ttlMs: 5000 });
    await cache.set('forever', 1, { ttlMs: 0 });
    expect(await raw.get(`${prefix}obj`)).toBe('{"a":[1,2]}');
    const pttl = await raw.pttl(`${prefix}obj`);
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect(await raw.pttl(`${prefix}short`)).toBeLessThanOrEqual(5000);
    expect(await raw.pttl(`${prefix}forever`)).toBe(-1);
    expect(cache.kind).toBe('redis');
  });

  it('uses a Redis client it is given without closing it', async () => {
    const prefix = newPrefix();
    const client = new Redis(svc.url);
    try {
      const cache = await createRedisCache({ redis: client, keyPrefix: prefix, bus, maxL1Entries: 10, defaultTtlMs: 1000 });
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
    const m = await replica(newPrefix(), { logger });
    await bus.publish({ subject: 'cache.invalidate', data: { keys: 'not-a-list' } });
    await drained(m);
    expect(logger.messages).toContain('ignored a malformed cache invalidation');
  });

  it('refuses invalid options', async () => {
    const base = { url: svc.url, keyPrefix: newPrefix(), bus, maxL1Entries: 10, defaultTtlMs: 1000 };
    await expect(createRedisCache({ ...base, maxL1Entries: 0 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, l1TtlMs: 0 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, defaultTtlMs: -5 })).rejects.toThrow(RangeError);
    await expect(createRedisCache({ ...base, commandTimeoutMs: 0 })).rejects.toThrow(RangeError);
  });
});
