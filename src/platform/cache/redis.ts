import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { EventBus, Subscription } from '../bus/port.ts';
import type { Clock } from '../clock.ts';
import { CacheUnavailableError } from './errors.ts';
import type { Cache } from './port.ts';
import { deserialise, requirePositiveInteger, resolveTtl, serialise } from './values.ts';

/** The slice of a logger the cache writes to; a pino `Logger` fits. */
export interface CacheLogger {
  warn(bindings: Record<string, unknown>, message: string): void;
}

interface RedisCacheCommonOptions {
  /** Prepended to every Redis key (`blocks:`); also scopes invalidations, so caches with different prefixes ignore each other. */
  readonly keyPrefix: string;
  /** Bound of this replica's in-process L1 (LRU). */
  readonly maxL1Entries: number;
  /**
   * Longest an entry stays in L1. This bounds staleness when an invalidation is lost (a bus
   * outage, a publish that failed after the Redis write): another replica serves the old value
   * for at most this long. Default 5 000.
   */
  readonly l1TtlMs?: number;
  /** TTL in Redis when `set` names none; 0 means never expires. */
  readonly defaultTtlMs: number;
  /** Carries invalidations between replicas. */
  readonly bus: EventBus;
  /** Identifies this replica; unique per cache instance across the deployment. Its bus consumer is `cache-<nodeId>`. Random by default. */
  readonly nodeId?: string;
  /** Subject invalidations travel on. Default `cache.invalidate`. */
  readonly invalidationSubject?: string;
  /** Longest any Redis command may take before it counts as failed. Default 1 000. */
  readonly commandTimeoutMs?: number;
  /** Time source for L1 expiry; the system's monotonic clock when absent. */
  readonly clock?: Clock;
  readonly logger?: CacheLogger;
}

/**
 * Either a URL (the cache owns and closes the connection) or a client the caller owns. A client
 * passed in should be created with `enableOfflineQueue: false`, `maxRetriesPerRequest: 0` and
 * `autoResendUnfulfilledCommands: false`, as the cache's own is; otherwise a write that timed out
 * here may still be applied by ioredis after a reconnect.
 */
export type RedisCacheOptions = RedisCacheCommonOptions &
  ({ readonly url: string; readonly redis?: never } | { readonly redis: Redis; readonly url?: never });

interface Invalidation {
  readonly origin: string;
  readonly prefix: string;
  readonly keys: readonly string[];
}

const isInvalidation = (data: unknown): data is Invalidation => {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  return (
    typeof d.origin === 'string' && typeof d.prefix === 'string' && Array.isArray(d.keys) && d.keys.every((k) => typeof k === 'string')
  );
};

/** Connection states in which no command can be answered now: fail at once instead of queueing or waiting. */
const DOWN = new Set(['reconnecting', 'close', 'end']);

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis ${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function whenReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  let onReady: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    redis.once('ready', resolve);
  });
  return withTimeout(ready, ms, 'connect').finally(() => {
    if (onReady) redis.off('ready', onReady);
  });
}

/**
 * The shared cache: an in-process LRU (L1) in front of Redis (L2). Values are JSON in Redis with a
 * `PX` TTL, under `keyPrefix`.
 *
 * Consistency: `set` and `delete` write Redis, then publish an invalidation; every other replica
 * drops the key from its L1 when it arrives, so its next `get` reads Redis. A replica ignores its
 * own invalidations. If an invalidation is lost, `l1TtlMs` bounds how long a replica serves the old
 * value. A read that races an invalidation of the same key does not fill L1.
 *
 * Failure policy: `get` never throws for Redis trouble and never waits longer than
 * `commandTimeoutMs`: an L1 hit is served, anything else is a miss (returns undefined), logged once
 * per outage; while the connection is known to be down it misses at once. `set`/`delete` throw
 * {@link CacheUnavailableError} on failure or timeout (a timed-out write may still have been
 * applied, so the invalidation is published anyway). A failed invalidation publish is logged,
 * not thrown: the write is in Redis and staleness elsewhere is bounded by `l1TtlMs`.
 * Rejects a value JSON cannot carry with a TypeError, like the in-process cache.
 */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const { keyPrefix, bus } = options;
  const maxL1 = requirePositiveInteger('maxL1Entries', options.maxL1Entries);
  const l1TtlMs = requirePositiveInteger('l1TtlMs', options.l1TtlMs ?? 5000);
  const defaultTtlMs = resolveTtl(undefined, options.defaultTtlMs);
  const timeoutMs = requirePositiveInteger('commandTimeoutMs', options.commandTimeoutMs ?? 1000);
  const nodeId = options.nodeId ?? randomUUID();
  const subject = options.invalidationSubject ?? 'cache.invalidate';
  const logger: CacheLogger = options.logger ?? {
    warn: (bindings, message) => console.warn(message, bindings),
  };

  const owned = options.redis === undefined;
  const redis =
    options.redis ??
    new Redis(options.url, {
      commandTimeout: timeoutMs,
      // A command is only ever sent on a live connection, and one cut off by a dropped connection
      // fails instead of being resent later: a write reported as failed must not land afterwards,
      // over a newer value and with no invalidation.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectionName: `blocks-cache-${nodeId}`,
    });

  const l1 = new LRUCache<string, string>({
    max: maxL1,
    ...(options.clock === undefined ? {} : { perf: options.clock, ttlResolution: 0 }),
  });

  // Reads and writes in flight per key, with a generation bumped by each invalidation of that key:
  // an operation only fills L1 if no invalidation arrived while it waited on Redis.
  const inFlight = new Map<string, { generation: number; users: number }>();
  const begin = (key: string): (() => boolean) => {
    let entry = inFlight.get(key);
    if (entry === undefined) {
      entry = { generation: 0, users: 0 };
      inFlight.set(key, entry);
    }
    entry.users += 1;
    const { generation } = entry;
    const current = entry;
    return () => {
      current.users -= 1;
      if (current.users === 0) inFlight.delete(key);
      return current.generation === generation;
    };
  };
  const dropLocal = (key: string): void => {
    l1.delete(key);
    const entry = inFlight.get(key);
    if (entry !== undefined) entry.generation += 1;
  };

  let degraded = false;
  const readFailed = (error: unknown): void => {
    if (degraded) return;
    degraded = true;
    logger.warn({ err: error, keyPrefix }, 'shared cache unreachable: reads miss (L1 still served) until Redis answers');
  };
  const redisAnswered = (): void => {
    degraded = false;
  };
  if (owned) {
    redis.on('error', readFailed);
    // Give the connection a moment so the first calls do not all miss; a Redis that is down
    // does not stop the process from starting (reads miss, writes fail, until it is back).
    await whenReady(redis, timeoutMs).catch(readFailed);
  }

  const l1Ttl = (redisTtlMs: number): number => (redisTtlMs <= 0 ? l1TtlMs : Math.min(redisTtlMs, l1TtlMs));

  let closed = false;
  const assertOpen = (): void => {
    if (closed) throw new Error('cache is closed');
  };

  const announce = async (key: string): Promise<void> => {
    const data: Invalidation = {
      origin: nodeId,
      prefix: keyPrefix,
      keys: [key],
    };
    try {
      await bus.publish({ subject, data });
    } catch (error) {
      logger.warn(
        { err: error, keyPrefix, subject },
        `cache invalidation not published: other replicas may serve the old value for up to ${l1TtlMs} ms`,
      );
    }
  };

  const write = async (operation: 'set' | 'delete', key: string, command: () => Promise<unknown>, fill?: { text: string; ttl: number }) => {
    dropLocal(key);
    const settled = begin(key);
    try {
      if (DOWN.has(redis.status)) throw new Error(`redis connection is ${redis.status}`);
      await withTimeout(command(), timeoutMs, operation);
    } catch (error) {
      settled();
      // A timed-out write may still land in Redis; telling the other replicas to drop the key is
      // always safe (it costs them one read) and keeps them from serving what it replaced.
      await announce(key);
      throw new CacheUnavailableError(operation, key, error);
    }
    const undisturbed = settled();
    redisAnswered();
    if (fill !== undefined && undisturbed) l1.set(key, fill.text, { ttl: l1Ttl(fill.ttl) });
    await announce(key);
  };

  let subscription: Subscription;
  try {
    // Ephemeral: a replica's invalidations matter only while it runs, so a stopped or crashed replica
    // leaves no consumer behind on the broker collecting them.
    subscription = await bus.subscribe({ consumer: `cache-${nodeId}`, subject, ephemeral: true }, async ({ data }) => {
      if (!isInvalidation(data)) {
        logger.warn({ subject, data }, 'ignored a malformed cache invalidation');
        return;
      }
      if (data.prefix !== keyPrefix || data.origin === nodeId) return;
      for (const key of data.keys) dropLocal(key);
    });
  } catch (error) {
    if (owned) redis.disconnect();
    throw error;
  }

  return {
    kind: 'redis',

    async ping() {
      assertOpen();
      const started = performance.now();
      if (DOWN.has(redis.status)) throw new Error(`redis connection is ${redis.status}`);
      await withTimeout(redis.ping(), timeoutMs, 'ping');
      return performance.now() - started;
    },

    async get<T>(key: string): Promise<T | undefined> {
      assertOpen();
      const hit = l1.get(key);
      if (hit !== undefined) return deserialise<T>(hit);
      if (DOWN.has(redis.status)) {
        readFailed(new Error(`redis connection is ${redis.status}`));
        return undefined;
      }
      const settled = begin(key);
      let text: string | null;
      let pttl: number;
      try {
        const replies = await withTimeout(
          redis
            .multi()
            .get(keyPrefix + key)
            .pttl(keyPrefix + key)
            .exec(),
          timeoutMs,
          'get',
        );
        const [getReply, ttlReply] = replies ?? [];
        if (getReply?.[0] || ttlReply?.[0]) throw getReply?.[0] ?? ttlReply?.[0];
        text = (getReply?.[1] as string | null | undefined) ?? null;
        pttl = Number(ttlReply?.[1] ?? -2);
      } catch (error) {
        settled();
        readFailed(error);
        return undefined;
      }
      const undisturbed = settled();
      redisAnswered();
      if (text === null) return undefined;
      // -2: the key expired between the two commands of the transaction; serve it, but do not keep it.
      if (undisturbed && pttl !== -2) l1.set(key, text, { ttl: l1Ttl(pttl) });
      return deserialise<T>(text);
    },

    async set(key, value, setOptions) {
      assertOpen();
      const text = serialise(key, value);
      const ttl = resolveTtl(setOptions?.ttlMs, defaultTtlMs);
      const fullKey = keyPrefix + key;
      await write('set', key, () => (ttl === 0 ? redis.set(fullKey, text) : redis.set(fullKey, text, 'PX', ttl)), {
        text,
        ttl,
      });
    },

    async delete(key) {
      assertOpen();
      await write('delete', key, () => redis.del(keyPrefix + key));
    },

    async close() {
      if (closed) return;
      closed = true;
      l1.clear();
      await subscription.stop();
      if (!owned) return;
      // A quiet quit when Redis answers; otherwise drop the socket rather than wait on it.
      if (redis.status === 'ready') {
        await withTimeout(redis.quit(), timeoutMs, 'quit').catch(() => redis.disconnect());
      } else {
        redis.disconnect();
      }
    },
  };
}
