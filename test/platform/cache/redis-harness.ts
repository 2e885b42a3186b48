import { afterAll, afterEach, beforeAll, expect, vi } from 'vitest';
import { Redis } from 'ioredis';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import type { EventBus } from '../../../src/platform/bus/port.ts';
import type { Cache } from '../../../src/platform/cache/port.ts';
import { createRedisCache, type CacheLogger, type RedisCacheOptions } from '../../../src/platform/cache/redis.ts';
import { uniqueName } from '../../support/services.ts';
import type { BusFixture } from '../../conformance/bus.suite.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** Where replicas get their bus: one in-process bus shared by all, or a broker with a connection per replica. */
export interface BusWorld {
  /** The bus the next replica uses. */
  next(): Promise<EventBus>;
  cleanup(): Promise<void>;
}

export const memoryBusWorld = async (): Promise<BusWorld> => {
  const bus = createMemoryBus();
  return { next: async () => bus, cleanup: () => bus.close() };
};

/** Every replica after the first opens its own connection to the broker, as another process would. */
export const brokerBusWorld = async (open: () => Promise<BusFixture>): Promise<BusWorld> => {
  const fixture = await open();
  let used = false;
  return {
    next: async () => {
      if (!used) {
        used = true;
        return fixture.bus;
      }
      if (fixture.openPeer === undefined) throw new Error('this bus fixture cannot open a peer');
      return fixture.openPeer();
    },
    cleanup: fixture.cleanup,
  };
};

export const recordingLogger = (): CacheLogger & { messages: string[] } => {
  const messages: string[] = [];
  return {
    messages,
    warn: (_bindings, message) => void messages.push(message),
  };
};

export const COMMAND_TIMEOUT_MS = 300;

export type ReplicaOverrides = Partial<Omit<RedisCacheOptions, 'url' | 'redis' | 'bus'>> & { url?: string };

export interface RedisCacheHarness {
  /** A direct client, for reading and writing Redis behind the caches' back. */
  raw(): Redis;
  /** A key prefix of this run; its keys are deleted after the file. */
  newPrefix(): string;
  /** A cache as one replica would build it: a node id unique to this run, a long L1 TTL (only an invalidation explains a replica seeing a new value). */
  replica(keyPrefix: string, overrides?: ReplicaOverrides): Promise<Cache>;
  /** Resolves once `cache` has handled every invalidation published so far. */
  drained(cache: Cache): Promise<void>;
  /** Invalidations waiting for `cache`'s bus consumer, asked over its bus (which outlives the cache). */
  lagOf(cache: Cache): Promise<number>;
  /** A TCP proxy to Redis, closed after the test. */
  proxy(): Promise<TcpProxy>;
}

/** Registers the hooks of a file that tests the Redis cache, and hands back its helpers. */
export function useRedisCacheHarness(redisUrl: string, makeWorld: () => Promise<BusWorld>): RedisCacheHarness {
  let world: BusWorld;
  let raw: Redis;
  const prefixes: string[] = [];
  const caches: Cache[] = [];
  const proxies: TcpProxy[] = [];
  const consumers = new Map<Cache, { bus: EventBus; consumer: string }>();

  beforeAll(async () => {
    world = await makeWorld();
    raw = new Redis(redisUrl);
  });

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    consumers.clear();
  });

  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
    }
    await raw.quit();
    await world.cleanup();
  });

  return {
    raw: () => raw,
    newPrefix: () => {
      const prefix = `${uniqueName('cachetest')}:`;
      prefixes.push(prefix);
      return prefix;
    },
    replica: async (keyPrefix, overrides = {}) => {
      const { url = redisUrl, nodeId = uniqueName('node'), ...rest } = overrides;
      const bus = await world.next();
      const cache = await createRedisCache({
        nodeId,
        url,
        keyPrefix,
        bus,
        maxL1Entries: 100,
        l1TtlMs: 60_000,
        defaultTtlMs: 60_000,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
        logger: recordingLogger(),
        ...rest,
      });
      caches.push(cache);
      consumers.set(cache, { bus, consumer: `cache-${nodeId}` });
      return cache;
    },
    drained: async (cache) => {
      const entry = consumers.get(cache);
      if (entry === undefined) throw new Error('not a replica of this test');
      await vi.waitFor(async () => expect(await entry.bus.lag(entry.consumer)).toBe(0), {
        timeout: 10_000,
        interval: 10,
      });
    },
    lagOf: async (cache) => {
      const entry = consumers.get(cache);
      if (entry === undefined) throw new Error('not a replica of this test');
      return entry.bus.lag(entry.consumer);
    },
    proxy: async () => {
      const proxy = await startTcpProxy(redisUrl);
      proxies.push(proxy);
      return proxy;
    },
  };
}
