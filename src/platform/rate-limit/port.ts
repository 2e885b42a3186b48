/**
 * The rate-limiter port: GCRA (the generic cell rate algorithm) in process, or atomically in Redis
 * so that every gateway replica draws from one allowance. Both pass
 * `test/conformance/rate-limit.suite.ts`.
 *
 * GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request at the
 * sustained rate. It has no window edges, so unlike a fixed window it never lets twice the limit
 * through around a boundary: at most `burst` requests at once, then one per `periodMs / limit`.
 */
export interface RateLimitPolicy {
  /** Requests allowed per period at the sustained rate. */
  readonly limit: number;
  readonly periodMs: number;
  /** Requests that may arrive at once after a quiet spell; `limit` when absent. */
  readonly burst?: number;
}

export interface RateLimitDecision {
  readonly allowed: boolean;
  /** Requests that could still be made right now. */
  readonly remaining: number;
  /** Milliseconds until a refused request would be allowed; 0 when allowed. */
  readonly retryAfterMs: number;
  /** Milliseconds until the allowance is whole again (the key is idle). */
  readonly resetMs: number;
}

export interface RateLimiter {
  readonly kind: 'memory' | 'redis';
  /**
   * Takes `cost` (default 1) from `key`'s allowance if all of it is there; a refused request takes nothing.
   * @throws RateLimiterUnavailableError when the shared store cannot answer in time (the caller applies its fail-open or fail-closed policy).
   */
  take(key: string, policy: RateLimitPolicy, cost?: number): Promise<RateLimitDecision>;
  /**
   * Gives back `cost` (default 1) that a `take` of the same key and policy took: a reservation
   * that turned out not to be needed. Reserving with `take` first and refunding after is what
   * keeps concurrent attempts within the burst, where counting them after they ended would let
   * every one through that started before the first ended. The allowance never grows past a full
   * burst, however much is given back; a key with nothing taken stays as it is.
   * @throws RateLimiterUnavailableError when the shared store cannot answer in time.
   */
  refund(key: string, policy: RateLimitPolicy, cost?: number): Promise<void>;
  close(): Promise<void>;
}
