import { describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from '../../src/platform/rate-limit/memory.ts';
import { rateLimitSuite } from './rate-limit.suite.ts';

rateLimitSuite('memory', { make: () => createMemoryRateLimiter() });

describe('memory rate limiter', () => {
  it('forgets the least recently used idle keys beyond its bound, which only makes them whole again', async () => {
    let now = 1_000_000;
    const limiter = createMemoryRateLimiter({ maxKeys: 2, clock: { now: () => now, sleep: async () => undefined } });
    const policy = { limit: 1, periodMs: 60_000 };
    expect((await limiter.take('a', policy)).allowed).toBe(true);
    expect((await limiter.take('a', policy)).allowed).toBe(false);
    await limiter.take('b', policy);
    await limiter.take('c', policy);
    expect((await limiter.take('a', policy)).allowed).toBe(true);
    now += 60_000;
    expect((await limiter.take('b', policy)).allowed).toBe(true);
  });
});
