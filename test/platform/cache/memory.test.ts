import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/platform/clock.ts';
import { createMemoryCache } from '../../../src/platform/cache/memory.ts';

const manualClock = (): Clock & { advance(ms: number): void } => {
  let now = 1000;
  return {
    now: () => now,
    sleep: async (ms) => void (now += ms),
    advance: (ms) => void (now += ms),
  };
};

describe('createMemoryCache', () => {
  it('expires entries on the injected clock, without real waiting', async () => {
    const clock = manualClock();
    const cache = createMemoryCache({
      maxEntries: 10,
      defaultTtlMs: 5000,
      clock,
    });
    await cache.set('default', 1);
    await cache.set('own', 2, { ttlMs: 100 });
    clock.advance(100);
    expect(await cache.get('own')).toBe(2);
    clock.advance(1);
    expect(await cache.get('own')).toBeUndefined();
    clock.advance(4899);
    expect(await cache.get('default')).toBe(1);
    clock.advance(1);
    expect(await cache.get('default')).toBeUndefined();
    await cache.close();
  });

  it('refuses invalid options when created', () => {
    expect(() => createMemoryCache({ maxEntries: 0, defaultTtlMs: 1000 })).toThrow(RangeError);
    expect(() => createMemoryCache({ maxEntries: 1.5, defaultTtlMs: 1000 })).toThrow(RangeError);
    expect(() => createMemoryCache({ maxEntries: 10, defaultTtlMs: -1 })).toThrow(RangeError);
    expect(() => createMemoryCache({ maxEntries: 10, defaultTtlMs: Number.NaN })).toThrow(RangeError);
  });

  it('reports its kind', async () => {
    const cache = createMemoryCache({ maxEntries: 1, defaultTtlMs: 0 });
    expect(cache.kind).toBe('memory');
    await cache.close();
  });
});
