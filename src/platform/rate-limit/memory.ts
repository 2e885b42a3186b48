import { LRUCache } from 'lru-cache';
import { createSystemClock, type Clock } from '../clock.ts';
import { checkCost, gcraParameters, gcraStep } from './gcra.ts';
import type { RateLimiter } from './port.ts';

export interface MemoryRateLimiterOptions {
  /** Keys tracked at once; the least recently used idle key is forgotten first. Default 100 000. */
  readonly maxKeys?: number;
  readonly clock?: Clock;
}

/** GCRA in this process: exact for one replica, and what `blocks start` uses when no Redis is configured. */
export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): RateLimiter {
  const clock = options.clock ?? createSystemClock();
  // A key whose TAT has passed holds no information (a missing key means the same), so the bound only forgets idle keys early.
  const tats = new LRUCache<string, number>({ max: options.maxKeys ?? 100_000 });
  return {
    kind: 'memory',
    async take(key, policy, cost = 1) {
      checkCost(cost);
      const now = clock.now();
      const step = gcraStep(tats.get(key), now, gcraParameters(policy), cost);
      if (step.allowed) tats.set(key, step.tat);
      const { tat: _tat, ...decision } = step;
      return decision;
    },
    async refund(key, policy, cost = 1) {
      checkCost(cost);
      const { intervalMs } = gcraParameters(policy);
      const stored = tats.get(key);
      if (stored === undefined) return;
      const tat = stored - intervalMs * cost;
      // A TAT at or before now means a whole allowance, exactly as a missing key does.
      if (tat <= clock.now()) tats.delete(key);
      else tats.set(key, tat);
    },
    async close() {
      tats.clear();
    },
  };
}
