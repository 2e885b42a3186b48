import type { Clock } from '../clock.ts';
import { createMemoryRateLimiter } from '../rate-limit/memory.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from '../rate-limit/port.ts';

/**
 * The failed-authentication throttle of access.ts, per source address. What it guarantees:
 *
 * - An attempt is counted when it starts, not when it ends. `reserve` takes one unit of the
 *   address's allowance before a credential is checked; a check that succeeds gives it back, one
 *   that fails keeps it. So however many guesses arrive at once, at most the burst are ever being
 *   checked, and with a shared (Redis) limiter that holds across replicas too. Counting after the
 *   answer would let every guess through that started before the first one failed.
 * - An address whose allowance is used up is refused without a check: `reserve` says so, and the
 *   address is remembered as blocked in this process, so that even a credential this process
 *   already knows is good is refused from it until the allowance refills.
 * - The blocked-address table is bounded: when it is full, the address blocked longest ago is
 *   forgotten first (never the new one). A forgotten address is still refused by the shared
 *   allowance on its next unknown credential; it only loses the refusal of known-good ones.
 * - A shared limiter that does not answer (Redis down, or slower than its bound) neither turns
 *   a 401 into a 5xx nor opens the gate: the attempt is reserved in this process's own allowance
 *   instead, so each replica still checks at most the burst at once. Slowness is what a flood of
 *   guesses causes, so failing open there would let the flood through.
 */
export interface FailedAttempts {
  /** Milliseconds `ip` must still wait before anything it sends is checked; 0 when it is not blocked. */
  blockedFor(ip: string): number;
  /** Takes one attempt from `ip`'s allowance before a credential is checked; `onLimiterError` hears of a limiter that did not answer. */
  reserve(ip: string, onLimiterError: LimiterErrorHandler): Promise<Reservation>;
  /** Counts a failure that had no reservation (no credential at all, or a known one that failed). */
  countFailure(ip: string, onLimiterError: LimiterErrorHandler): Promise<void>;
}

/** Told what a limiter that did not answer threw (to log it); the attempt then goes ahead unreserved. */
export type LimiterErrorHandler = (error: unknown) => void;

/** One reserved attempt: `throttled` when none was left, else settle it once with `succeeded` or `failed`. */
export type Reservation =
  | { readonly throttled: true; readonly waitMs: number }
  | {
      readonly throttled: false;
      /** The credential was good (or the check could not be made): the attempt is given back. */
      readonly succeeded: () => Promise<void>;
      /** The credential was refused: the attempt stays counted, and blocks the address if it was the last. */
      readonly failed: () => Promise<void>;
    };

export interface FailedAttemptsOptions {
  readonly limiter: RateLimiter;
  readonly policy: RateLimitPolicy;
  readonly clock: Clock;
  /** Blocked addresses remembered at once; the one blocked longest ago is forgotten first. Default 10 000. */
  readonly maxBlocked?: number;
}

export function createFailedAttempts(options: FailedAttemptsOptions): FailedAttempts {
  const { limiter, policy, clock } = options;
  const maxBlocked = options.maxBlocked ?? 10_000;
  const local = createMemoryRateLimiter({ clock });
  // Insertion order is blocking order: the first entry is the one blocked longest ago.
  const blockedUntil = new Map<string, number>();
  const keyOf = (ip: string): string => `authfail:${ip}`;

  const block = (ip: string, forMs: number): void => {
    const now = clock.now();
    blockedUntil.delete(ip);
    if (blockedUntil.size >= maxBlocked) for (const [address, until] of blockedUntil) if (until <= now) blockedUntil.delete(address);
    while (blockedUntil.size >= maxBlocked) blockedUntil.delete(blockedUntil.keys().next().value as string);
    blockedUntil.set(ip, now + forMs);
  };

  /** After a failure took the last of the allowance: blocked until the next attempt would be admitted. */
  const blockIfSpent = (ip: string, decision: RateLimitDecision): void => {
    if (!decision.allowed) block(ip, decision.retryAfterMs);
    else if (decision.remaining === 0) block(ip, untilNextAllowedMs(decision, policy));
  };

  /** Takes from the shared allowance, or from this process's own when the shared one does not answer; says which answered. */
  const take = async (ip: string, onLimiterError: LimiterErrorHandler): Promise<{ decision: RateLimitDecision; from: RateLimiter }> => {
    try {
      return { decision: await limiter.take(keyOf(ip), policy), from: limiter };
    } catch (error) {
      onLimiterError(error);
      return { decision: await local.take(keyOf(ip), policy), from: local };
    }
  };

  const countFailure = async (ip: string, onLimiterError: LimiterErrorHandler): Promise<void> => {
    blockIfSpent(ip, (await take(ip, onLimiterError)).decision);
  };

  return {
    blockedFor(ip) {
      const until = blockedUntil.get(ip);
      if (until === undefined) return 0;
      const waitMs = until - clock.now();
      if (waitMs > 0) return waitMs;
      blockedUntil.delete(ip);
      return 0;
    },

    async reserve(ip, onLimiterError) {
      const { decision, from } = await take(ip, onLimiterError);
      if (!decision.allowed) {
        block(ip, decision.retryAfterMs);
        return { throttled: true, waitMs: decision.retryAfterMs };
      }
      return {
        throttled: false,
        succeeded: async () => {
          try {
            await from.refund(keyOf(ip), policy);
          } catch (error) {
            onLimiterError(error);
          }
        },
        // The failure that used the allowance up blocks at once: the next request from that address is refused, not tried.
        failed: async () => blockIfSpent(ip, decision),
      };
    },

    countFailure,
  };
}

/** How long until `policy` admits one more, after `decision` took the last of it (GCRA: one interval past the burst's start). */
const untilNextAllowedMs = (decision: RateLimitDecision, policy: RateLimitPolicy): number => {
  const intervalMs = policy.periodMs / policy.limit;
  return Math.max(1, Math.ceil(decision.resetMs - ((policy.burst ?? policy.limit) - 1) * intervalMs));
};
