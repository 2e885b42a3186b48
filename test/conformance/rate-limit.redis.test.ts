import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createRedisRateLimiter } from '../../src/platform/rate-limit/redis.ts';
import { RateLimiterUnavailableError } from '../../src/platform/rate-limit/errors.ts';
import { probeService, uniqueName } from '../support/services.ts';
import { rateLimitSuite } from './rate-limit.suite.ts';

const svc = await probeService('redis');
const keyPrefix = `${uniqueName('rl')}:`;

describe.skipIf(!svc.ok)('redis rate limiter', () => {
  afterAll(async () => {
    const redis = new Redis(svc.url);
    try {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      await redis.quit();
    }
  });

  rateLimitSuite('redis', {
    make: () => createRedisRateLimiter({ url: svc.url, keyPrefix, timeoutMs: 1_000 }),
    // Two connections, as two gateway processes would have.
    pair: async () => [
      createRedisRateLimiter({ url: svc.url, keyPrefix, timeoutMs: 1_000 }),
      createRedisRateLimiter({ url: svc.url, keyPrefix, timeoutMs: 1_000 }),
    ],
  });

  it('reports Redis being unreachable within its bound instead of holding the request', async () => {
    const limiter = createRedisRateLimiter({ url: 'redis://127.0.0.1:9', keyPrefix, timeoutMs: 100 });
    try {
      const started = Date.now();
      await expect(limiter.take('k', { limit: 1, periodMs: 1000 })).rejects.toBeInstanceOf(RateLimiterUnavailableError);
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await limiter.close();
    }
  });

  it('stores nothing for a refused request and lets the key expire once it no longer matters', async () => {
    const limiter = createRedisRateLimiter({ url: svc.url, keyPrefix, timeoutMs: 1_000 });
    const redis = new Redis(svc.url);
    try {
      const key = uniqueName('expiry');
      await limiter.take(key, { limit: 2, periodMs: 1_000 });
      const ttl = await redis.pttl(`${keyPrefix}${key}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(500);
    } finally {
      await limiter.close();
      await redis.quit();
    }
  });
});
