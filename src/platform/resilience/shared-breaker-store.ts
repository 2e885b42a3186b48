import { Redis } from 'ioredis';
import type { BreakerState } from './breakers.ts';
import { createFailFastRedis } from '../redis-fail-fast.ts';

/** A shared breaker's state as the store holds it. */
export interface SharedBreakerView {
  readonly state: BreakerState;
  readonly failures: number;
  /** When it last opened, on the store's clock (ms); null while closed. */
  readonly openedAt: number | null;
  /** How long until a trial call may start (0 once it may); 0 while closed. */
  readonly retryAfterMs: number;
}

/** What one report did to the shared state: `from` → `to` (equal when nothing changed). */
export interface SharedTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly view: SharedBreakerView;
}

/** The outcome of asking for the trial call of an open breaker. */
export type TrialClaim =
  | { readonly outcome: 'granted' }
  /** The breaker is closed (another replica's trial succeeded): call as usual. */
  | { readonly outcome: 'closed' }
  /** Another replica holds the trial, or recovery time has not passed: refuse, for this long. */
  | { readonly outcome: 'refused'; readonly retryAfterMs: number };

/**
 * Where shared breakers keep their state, so every replica opens, trials and closes one breaker.
 * Every operation is atomic in the store; time is the store's own, so replicas with skewed clocks
 * agree on when a breaker may be tried again. Operations reject when the store is unreachable.
 */
export interface SharedBreakerStore {
  read(name: string): Promise<SharedBreakerView>;
  /**
   * A call failed. While closed, counts it and opens at `threshold` consecutive failures; a failed
   * trial (`trial`) reopens. Opening sets the next trial `recoveryMs` away.
   */
  failure(
    name: string,
    report: { readonly threshold: number; readonly recoveryMs: number; readonly trial: boolean },
  ): Promise<SharedTransition>;
  /** A call succeeded. While closed, resets the count; a successful trial (`trial`) closes. */
  success(name: string, trial: boolean): Promise<SharedTransition>;
  /**
   * Claims the one trial call of an open breaker whose recovery time has passed. A claim holds for
   * `leaseMs`: a replica that dies mid-trial delays the next trial by that long, never forever.
   */
  claimTrial(name: string, leaseMs: number): Promise<TrialClaim>;
  close(): Promise<void>;
}

export interface RedisBreakerStoreOptions {
  readonly url: string;
  /** Prepended to every key, e.g. `blocks:breaker:`. */
  readonly keyPrefix: string;
  /** Longest an operation may wait for Redis; it is on the path of a protected call. Default 100. */
  readonly timeoutMs?: number;
}

// A breaker nobody used for a day is forgotten (closed), so abandoned names do not pile up.
const LUA_HEADER = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function view(now)
  local s = redis.call('HMGET', KEYS[1], 'state', 'failures', 'opened_at', 'recover_at')
  local state = s[1] or 'closed'
  local retry = 0
  if state ~= 'closed' then retry = math.max(0, (tonumber(s[4]) or now) - now) end
  return {state, tonumber(s[2]) or 0, tonumber(s[3]) or -1, retry}
end
local function keep() redis.call('PEXPIRE', KEYS[1], 86400000) end
`;

/** KEYS: breaker. Returns the view. */
const READ_SCRIPT = `${LUA_HEADER}
return view(now_ms())
`;

/** KEYS: breaker. ARGV: threshold, trial (0/1), recovery ms. Returns {from, view...}. */
const FAILURE_SCRIPT = `${LUA_HEADER}
local now = now_ms()
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local recovery = tonumber(ARGV[3])
if ARGV[2] == '1' then
  if state == 'half-open' then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'recover_at', now + recovery)
    keep()
  end
elseif state == 'closed' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'recover_at', now + recovery)
  end
  keep()
end
local v = view(now)
return {state, v[1], v[2], v[3], v[4]}
`;

/** KEYS: breaker. ARGV: trial (0/1). Returns {from, view...}. */
const SUCCESS_SCRIPT = `${LUA_HEADER}
local now = now_ms()
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if (ARGV[1] == '1' and state == 'half-open') or state == 'closed' then
  redis.call('DEL', KEYS[1])
end
local v = view(now)
return {state, v[1], v[2], v[3], v[4]}
`;

/**
 * KEYS: breaker. ARGV: lease ms. An open breaker past recover_at, or a half-open one whose trial's
 * lease ran out (its replica died), is handed to this caller, half-open, until now + lease.
 * Returns {outcome, retry ms}: 1 granted, 2 closed, 0 refused.
 */
const CLAIM_SCRIPT = `${LUA_HEADER}
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'state', 'recover_at')
local state = s[1] or 'closed'
if state == 'closed' then return {2, 0} end
local at = tonumber(s[2]) or now
if now < at then return {0, at - now} end
redis.call('HSET', KEYS[1], 'state', 'half-open', 'recover_at', now + tonumber(ARGV[1]))
keep()
return {1, 0}
`;

type Reply = [string, number, number, number];

/** Waits for the connection (first use, or a reconnect under way) no longer than an operation's own bound. */
function readyWithin(redis: Redis, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis not ready within ${ms} ms (status ${redis.status})`));
    }, ms);
    redis.once('ready', onReady);
  });
}

const toView = ([state, failures, openedAt, retryAfterMs]: Reply): SharedBreakerView => ({
  state: state as BreakerState,
  failures,
  openedAt: openedAt < 0 ? null : openedAt,
  retryAfterMs,
});

/**
 * Shared breakers in Redis: one hash per breaker, every step one Lua script (one round trip). Its
 * commands fail at once while Redis is unreachable (no offline queue), so a caller can fall back
 * to a local decision instead of waiting.
 */
export function createRedisBreakerStore(options: RedisBreakerStoreOptions): SharedBreakerStore {
  const timeoutMs = options.timeoutMs ?? 100;
  const redis = createFailFastRedis(options.url, { keyPrefix: options.keyPrefix, timeoutMs });
  const script = (lua: string) => {
    let sha: string | undefined;
    return async (name: string, args: readonly (string | number)[]): Promise<unknown[]> => {
      if (redis.status !== 'ready') await readyWithin(redis, timeoutMs);
      sha ??= (await redis.script('LOAD', lua)) as string;
      try {
        return (await redis.evalsha(sha, 1, name, ...args)) as unknown[];
      } catch (error) {
        // The server was restarted and forgot the script: load it again once.
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        sha = (await redis.script('LOAD', lua)) as string;
        return (await redis.evalsha(sha, 1, name, ...args)) as unknown[];
      }
    };
  };
  const read = script(READ_SCRIPT);
  const failure = script(FAILURE_SCRIPT);
  const success = script(SUCCESS_SCRIPT);
  const claim = script(CLAIM_SCRIPT);
  const transition = (reply: unknown[]): SharedTransition => {
    const [from, ...rest] = reply as [string, ...Reply];
    const view = toView(rest);
    return { from: from as BreakerState, to: view.state, view };
  };
  return {
    read: async (name) => toView((await read(name, [])) as Reply),
    failure: async (name, { threshold, recoveryMs, trial }) => transition(await failure(name, [threshold, trial ? 1 : 0, recoveryMs])),
    success: async (name, trial) => transition(await success(name, [trial ? 1 : 0])),
    async claimTrial(name, leaseMs) {
      const [outcome, retryAfterMs] = (await claim(name, [leaseMs])) as [number, number];
      if (outcome === 1) return { outcome: 'granted' };
      if (outcome === 2) return { outcome: 'closed' };
      return { outcome: 'refused', retryAfterMs };
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
