import { Redis } from 'ioredis';
import { checkCost, gcraParameters } from './gcra.ts';
import { RateLimiterUnavailableError } from './errors.ts';
import type { RateLimiter } from './port.ts';
import { createFailFastRedis } from '../redis-fail-fast.ts';

export interface RedisRateLimiterOptions {
  readonly url: string;
  /** Prepended to every key, e.g. `blocks:rl:`. */
  readonly keyPrefix: string;
  /**
   * Longest a decision may wait for Redis before the limiter reports it unavailable. Keep it
   * small: it is added to every request while Redis is slow. Default 100.
   */
  readonly timeoutMs?: number;
}

/*
 * The GCRA step of gcra.ts, atomically in Redis. Time is Redis's own (TIME), so replicas with
 * skewed clocks still share one timeline. The TAT is stored in milliseconds with a fraction and
 * expires when it has passed, which is when it would stop mattering anyway.
 * Returns { allowed, remaining, retry_after_ms, reset_ms }.
 */
const GCRA_SCRIPT = `
local interval = tonumber(ARGV[1])
local burst_span = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - burst_span
if now < allow_at then
  return {0, math.max(0, math.floor((now - (tat - burst_span)) / interval)), math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, math.floor((now - allow_at) / interval), 0, math.ceil(new_tat - now)}
`;

/*
 * The inverse of one GCRA step: moves the TAT back by `cost` intervals. A TAT that lands at or
 * before now is deleted, which is a whole allowance again and never more. Returns nothing useful.
 */
const REFUND_SCRIPT = `
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local new_tat = tat - tonumber(ARGV[1]) * tonumber(ARGV[2])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
end
return 1
`;

/** Waits for the connection (first use, or a reconnect under way) no longer than the decision's own bound. */
function readyWithin(redis: Redis, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      if (error) reject(error);
      else resolve();
    };
    const onReady = (): void => done();
    const timer = setTimeout(() => done(new Error(`Redis not ready within ${ms} ms (status ${redis.status})`)), ms);
    redis.once('ready', onReady);
  });
}

type GcraCommand = (key: string, interval: string, burstSpan: string, cost: string) => Promise<[number, number, number, number]>;
type RefundCommand = (key: string, interval: string, cost: string) => Promise<number>;

/** GCRA shared by every replica through one Redis; each decision, and each refund, is one script call (one round trip). */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const timeoutMs = options.timeoutMs ?? 100;
  const redis = createFailFastRedis(options.url, { keyPrefix: options.keyPrefix, timeoutMs });
  redis.defineCommand('blocksGcra', { numberOfKeys: 1, lua: GCRA_SCRIPT });
  redis.defineCommand('blocksGcraRefund', { numberOfKeys: 1, lua: REFUND_SCRIPT });
  const commands = redis as unknown as { blocksGcra: GcraCommand; blocksGcraRefund: RefundCommand };
  const gcra = commands.blocksGcra.bind(redis);
  const refund = commands.blocksGcraRefund.bind(redis);

  // Decisions arriving before the connection is ready share one wait (and one listener).
  let waiting: Promise<void> | undefined;
  /** Runs one script once the connection is ready, within the limiter's bound. */
  const run = async <T>(script: () => Promise<T>): Promise<T> => {
    try {
      if (redis.status !== 'ready') await (waiting ??= readyWithin(redis, timeoutMs).finally(() => (waiting = undefined)));
      return await script();
    } catch (error) {
      throw new RateLimiterUnavailableError(error);
    }
  };
  return {
    kind: 'redis',
    async take(key, policy, cost = 1) {
      checkCost(cost);
      const { intervalMs, burstSpanMs } = gcraParameters(policy);
      const [allowed, remaining, retryAfterMs, resetMs] = await run(() => gcra(key, String(intervalMs), String(burstSpanMs), String(cost)));
      return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
    },
    async refund(key, policy, cost = 1) {
      checkCost(cost);
      const { intervalMs } = gcraParameters(policy);
      await run(() => refund(key, String(intervalMs), String(cost)));
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
