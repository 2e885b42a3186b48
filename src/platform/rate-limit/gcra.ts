import type { RateLimitDecision, RateLimitPolicy } from './port.ts';

/** The policy in GCRA terms: emission interval and the span a full burst covers, in milliseconds. */
export interface GcraParameters {
  readonly intervalMs: number;
  readonly burstSpanMs: number;
}

/** @throws RangeError for a policy that cannot admit anything (non-positive or non-finite figures). */
export function gcraParameters(policy: RateLimitPolicy): GcraParameters {
  const burst = policy.burst ?? policy.limit;
  for (const [name, value] of [
    ['limit', policy.limit],
    ['periodMs', policy.periodMs],
    ['burst', burst],
  ] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`rate limit ${name} must be a positive number (got ${value})`);
  }
  const intervalMs = policy.periodMs / policy.limit;
  return { intervalMs, burstSpanMs: intervalMs * burst };
}

/**
 * One GCRA step: given the stored TAT (or none) and the time now, whether `cost` requests fit, and
 * the TAT to store when they do. The Redis adapter runs the same arithmetic in its script.
 */
export function gcraStep(
  storedTat: number | undefined,
  now: number,
  parameters: GcraParameters,
  cost: number,
): RateLimitDecision & { readonly tat: number } {
  const { intervalMs, burstSpanMs } = parameters;
  const tat = Math.max(storedTat ?? now, now);
  const newTat = tat + intervalMs * cost;
  const allowAt = newTat - burstSpanMs;
  if (now < allowAt) {
    return {
      allowed: false,
      remaining: Math.max(0, Math.floor((now - (tat - burstSpanMs)) / intervalMs)),
      retryAfterMs: Math.ceil(allowAt - now),
      resetMs: Math.ceil(tat - now),
      tat,
    };
  }
  return {
    allowed: true,
    remaining: Math.floor((now - allowAt) / intervalMs),
    retryAfterMs: 0,
    resetMs: Math.ceil(newTat - now),
    tat: newTat,
  };
}

export function checkCost(cost: number): void {
  if (!Number.isSafeInteger(cost) || cost < 1) throw new RangeError(`rate limit cost must be a positive integer (got ${cost})`);
}
