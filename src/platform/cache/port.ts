/**
 * The cache port: an in-process LRU, or an LRU (L1) in front of Redis (L2) that invalidates
 * the L1 of every replica over the bus. Both pass `test/conformance/cache.suite.ts`.
 * Values must be JSON-serialisable.
 */
export interface CacheSetOptions {
  /** Time to live in milliseconds; the cache's default when absent. */
  readonly ttlMs?: number;
}

export interface Cache {
  readonly kind: 'memory' | 'redis';
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, options?: CacheSetOptions): Promise<void>;
  /** Removes the key here and, for the shared cache, from every replica's L1. */
  delete(key: string): Promise<void>;
  /** Round trip to the shared store in milliseconds (0 for the in-process cache); throws when it is unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}
