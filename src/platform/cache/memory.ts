import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import type { Cache } from './port.ts';
import { deserialise, requirePositiveInteger, resolveTtl, serialise } from './values.ts';

export interface MemoryCacheOptions {
  /** Most entries kept; the least recently used is evicted beyond it. */
  readonly maxEntries: number;
  /** TTL when `set` names none; 0 means entries never expire. */
  readonly defaultTtlMs: number;
  /** Time source for expiry; the system's monotonic clock when absent. */
  readonly clock?: Clock;
}

/**
 * The embedded cache: one process, bounded by `maxEntries` (LRU) and by TTL. Values are kept as
 * JSON text, so every `get` returns a fresh copy and mutating what was passed to `set` or returned
 * by `get` never changes what is cached. `set` throws a TypeError for a value JSON cannot carry.
 */
export function createMemoryCache(options: MemoryCacheOptions): Cache {
  const max = requirePositiveInteger('maxEntries', options.maxEntries);
  const defaultTtlMs = resolveTtl(undefined, options.defaultTtlMs);
  const lru = new LRUCache<string, string>({
    max,
    // An injected clock is read on every check; the default one may be read once per millisecond.
    ...(options.clock === undefined ? {} : { perf: options.clock, ttlResolution: 0 }),
  });
  let closed = false;
  const open = (): void => {
    if (closed) throw new Error('cache is closed');
  };

  return {
    kind: 'memory',
    async get<T>(key: string): Promise<T | undefined> {
      open();
      const text = lru.get(key);
      return text === undefined ? undefined : deserialise<T>(text);
    },
    async set(key, value, setOptions) {
      open();
      const text = serialise(key, value);
      lru.set(key, text, { ttl: resolveTtl(setOptions?.ttlMs, defaultTtlMs) });
    },
    async delete(key) {
      open();
      lru.delete(key);
    },
    async ping() {
      open();
      return 0;
    },
    async close() {
      closed = true;
      lru.clear();
    },
  };
}
