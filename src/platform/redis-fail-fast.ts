import { Redis } from 'ioredis';

/**
 * A Redis connection for decisions on the request path (rate limits, shared breakers): a command
 * fails after `timeoutMs`, and at once while disconnected (no offline queue, no retries), so its
 * caller falls back to a local decision instead of holding the request up. Connection errors
 * surface on the next command; the listener keeps ioredis from reporting them as unhandled.
 */
export function createFailFastRedis(url: string, options: { keyPrefix: string; timeoutMs: number }): Redis {
  const redis = new Redis(url, {
    keyPrefix: options.keyPrefix,
    commandTimeout: options.timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => undefined);
  return redis;
}
