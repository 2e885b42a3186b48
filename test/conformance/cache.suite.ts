import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Cache } from '../../src/platform/cache/port.ts';

/** What a suite case asks the adapter for; adapters map these onto their own options. */
export interface MakeCacheOptions {
  readonly maxEntries: number;
  readonly defaultTtlMs: number;
}

export type MakeCache = (options: MakeCacheOptions) => Cache | Promise<Cache>;

/** Every case of the suite, by id; a skip names ids from this list, so a typo does not compile. */
export const CACHE_CASES = {
  'get-set-delete': 'returns what was set and nothing after delete',
  miss: 'returns undefined for a key never set and deletes a missing key quietly',
  'json-values': 'round-trips every JSON type, keeps null apart from a miss, refuses what JSON cannot carry',
  'keys-independent': 'keeps keys apart, whatever characters they contain',
  'default-ttl': 'expires an entry after the default TTL',
  'per-call-ttl': 'expires an entry after its own TTL; ttlMs 0 never expires',
  'lru-bound': 'evicts the least recently used entry beyond maxEntries',
  copies: 'hands out copies: mutating a value passed in or handed out does not change the cache',
  'last-writer-wins': 'settles concurrent writes to one key on the last one issued',
  'closed-cache': 'rejects calls after close',
  ping: 'answers ping with a round-trip time while open',
} as const;

export type CacheCase = keyof typeof CACHE_CASES;

export interface CacheSuiteOptions {
  /** Cases this adapter cannot meet, each with why. Printed when the suite is collected; never silent. */
  readonly skip?: readonly {
    readonly reason: string;
    readonly cases: readonly CacheCase[];
  }[];
}

/** Runs the cache port's contract against one adapter. */
export function cacheSuite(name: string, makeCache: MakeCache, suiteOptions: CacheSuiteOptions = {}): void {
  const skipped = new Map<CacheCase, string>();
  for (const { reason, cases } of suiteOptions.skip ?? []) for (const c of cases) skipped.set(c, reason);

  describe(`cache port: ${name}`, () => {
    const open: Cache[] = [];
    const make = async (options: Partial<MakeCacheOptions> = {}): Promise<Cache> => {
      const cache = await makeCache({
        maxEntries: 100,
        defaultTtlMs: 60_000,
        ...options,
      });
      open.push(cache);
      return cache;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });

    const contract = (id: CacheCase, body: () => Promise<void>): void => {
      const reason = skipped.get(id);
      if (reason !== undefined) {
        console.info(`[cache suite: ${name}] not run: "${CACHE_CASES[id]}" (${id}): ${reason}`);
        return;
      }
      it(CACHE_CASES[id], body);
    };

    contract('get-set-delete', async () => {
      const cache = await make();
      await cache.set('user:1', { name: 'Ada', roles: ['admin'] });
      expect(await cache.get('user:1')).toEqual({
        name: 'Ada',
        roles: ['admin'],
      });
      await cache.set('user:1', { name: 'Grace' });
      expect(await cache.get('user:1')).toEqual({ name: 'Grace' });
      await cache.delete('user:1');
      expect(await cache.get('user:1')).toBeUndefined();
    });

    contract('miss', async () => {
      const cache = await make();
      expect(await cache.get('never-set')).toBeUndefined();
      await expect(cache.delete('never-set')).resolves.toBeUndefined();
      expect(await cache.get('never-set')).toBeUndefined();
    });

    contract('json-values', async () => {
      const cache = await make();
      const values: Record<string, unknown> = {
        string: 'héllo "world"',
        empty: '',
        number: 3.25,
        zero: 0,
        negative: -7,
        boolean: false,
        null: null,
        array: [1, 'two', null, { three: [3] }],
        object: { nested: { deep: [true, { x: 1 }] }, unicode: '✓ 日本' },
      };
      for (const [key, value] of Object.entries(values)) await cache.set(key, value);
      for (const [key, value] of Object.entries(values)) expect(await cache.get(key)).toEqual(value);
      expect(await cache.get('null')).toBeNull();

      await expect(cache.set('undefined', undefined)).rejects.toBeInstanceOf(TypeError);
      await expect(cache.set('bigint', 1n)).rejects.toBeInstanceOf(TypeError);
      await expect(cache.set('function', () => 1)).rejects.toBeInstanceOf(TypeError);
      expect(await cache.get('undefined')).toBeUndefined();
      await expect(cache.set('ttl', 1, { ttlMs: -1 })).rejects.toBeInstanceOf(RangeError);
      expect(await cache.get('ttl')).toBeUndefined();
    });

    contract('keys-independent', async () => {
      const cache = await make();
      const keys = ['a', 'a:b', 'a.b', 'a b', 'A', 'ключ', 'a*', 'a>'];
      await Promise.all(keys.map((k, i) => cache.set(k, i)));
      for (const [i, k] of keys.entries()) expect(await cache.get(k)).toBe(i);
      await cache.delete('a');
      expect(await cache.get('a')).toBeUndefined();
      expect(await cache.get('A')).toBe(4);
      expect(await cache.get('a:b')).toBe(1);
    });

    contract('default-ttl', async () => {
      const cache = await make({ defaultTtlMs: 150 });
      await cache.set('short', 'lived');
      expect(await cache.get('short')).toBe('lived');
      await vi.waitFor(async () => expect(await cache.get('short')).toBeUndefined(), { timeout: 3000, interval: 25 });
    });

    contract('per-call-ttl', async () => {
      const cache = await make({ defaultTtlMs: 150 });
      await cache.set('long', 'kept', { ttlMs: 60_000 });
      await cache.set('forever', 'kept', { ttlMs: 0 });
      await cache.set('short', 'gone', { ttlMs: 100 });
      expect(await cache.get('short')).toBe('gone');
      await vi.waitFor(async () => expect(await cache.get('short')).toBeUndefined(), { timeout: 3000, interval: 25 });
      // Outlive the default TTL too, so an adapter that ignored per-call TTLs would lose these.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await cache.get('long')).toBe('kept');
      expect(await cache.get('forever')).toBe('kept');
    });

    contract('lru-bound', async () => {
      const cache = await make({ maxEntries: 3 });
      await cache.set('a', 1);
      await cache.set('b', 2);
      await cache.set('c', 3);
      expect(await cache.get('a')).toBe(1); // a is now more recent than b
      await cache.set('d', 4);
      expect(await cache.get('b')).toBeUndefined();
      expect(await cache.get('a')).toBe(1);
      expect(await cache.get('c')).toBe(3);
      expect(await cache.get('d')).toBe(4);
    });

    contract('copies', async () => {
      const cache = await make();
      const input = { tags: ['x'], meta: { count: 1 } };
      await cache.set('doc', input);
      input.tags.push('mutated-input');
      input.meta.count = 99;
      const first = await cache.get<typeof input>('doc');
      expect(first).toEqual({ tags: ['x'], meta: { count: 1 } });
      first?.tags.push('mutated-output');
      if (first) first.meta.count = 42;
      const second = await cache.get<typeof input>('doc');
      expect(second).toEqual({ tags: ['x'], meta: { count: 1 } });
      expect(second).not.toBe(first);
    });

    contract('last-writer-wins', async () => {
      const cache = await make();
      await Promise.all(Array.from({ length: 20 }, (_, i) => cache.set('race', { writer: i })));
      expect(await cache.get('race')).toEqual({ writer: 19 });
      await Promise.all([cache.set('race', 'a'), cache.delete('race')]);
      expect(await cache.get('race')).toBeUndefined();
      await Promise.all([cache.delete('race'), cache.set('race', 'b'), cache.set('race', 'c')]);
      expect(await cache.get('race')).toBe('c');
      // Reads racing writes see some written value, never a torn or foreign one.
      const reads = await Promise.all(Array.from({ length: 10 }, (_, i) => Promise.all([cache.set('race', i), cache.get('race')])));
      for (const [, read] of reads) expect(['c', ...Array.from({ length: 10 }, (_, i) => i)]).toContainEqual(read);
      expect(await cache.get('race')).toBe(9);
    });

    contract('closed-cache', async () => {
      const cache = await make();
      await cache.set('k', 1);
      await cache.close();
      await expect(cache.get('k')).rejects.toThrow();
      await expect(cache.set('k', 2)).rejects.toThrow();
      await expect(cache.delete('k')).rejects.toThrow();
      await expect(cache.ping()).rejects.toThrow();
      await expect(cache.close()).resolves.toBeUndefined();
    });

    contract('ping', async () => {
      const cache = await make();
      const ms = await cache.ping();
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(5_000);
    });
  });
}
