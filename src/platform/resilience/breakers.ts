import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { createSystemClock, type Clock } from '../clock.ts';
import { CircuitOpenError } from './errors.ts';
import { createSharedBreaker } from './shared-breaker.ts';
import type { SharedBreakerStore } from './shared-breaker-store.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** One breaker as the registry reports it (the shape `/health` and the dashboard show). */
export interface BreakerSnapshot {
  readonly name: string;
  readonly state: BreakerState;
  /** Consecutive failures counted by the breaker (reset by a success). */
  readonly failures: number;
  /** When the breaker last opened (ISO 8601, from the registry's clock); null unless open or half-open. */
  readonly opened_at: string | null;
}

export interface BreakerStateChange {
  readonly name: string;
  readonly from: BreakerState;
  readonly to: BreakerState;
  /** Clock time of the change, in milliseconds. */
  readonly at: number;
}

/** The breaker guarding one named dependency. */
export interface Breaker {
  readonly name: string;
  /**
   * Runs `fn` unless the breaker is open. Resolves or rejects as `fn` does; any rejection counts as
   * a failure. Throws {@link CircuitOpenError} without calling `fn` while open, and while the
   * half-open trial call is still running (only one call probes a recovering dependency).
   */
  execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T>;
  state(): BreakerState;
  snapshot(): BreakerSnapshot;
}

export interface BreakerRegistryOptions {
  /** Consecutive failures that open a breaker. Default 5 (the spec's `failure_threshold`). */
  readonly failureThreshold?: number;
  /** How long a breaker stays open before one trial call is let through. Default 30 000 (`recovery_timeout`). */
  readonly recoveryTimeoutMs?: number;
  readonly clock?: Clock;
  /**
   * Called on every transition: opened, trial call started (half-open), closed. Must not throw.
   * A shared breaker's transitions are reported by the replica that made them.
   */
  readonly onStateChange?: (change: BreakerStateChange) => void;
  /** Where breakers asked for with `{ shared: true }` keep their state; without it they are local. */
  readonly sharedStore?: SharedBreakerStore | undefined;
  /** How stale a replica's copy of a shared breaker may get (another replica's opening is seen within it). Default 1 000. */
  readonly sharedSyncIntervalMs?: number;
  /** The shared store failed and a call was decided by this process' breaker alone. Must not throw. */
  readonly onSharedStoreError?: (error: unknown, breaker: string) => void;
}

export interface BreakerOptions {
  /**
   * Keep the breaker's state where every replica sees it (the registry's `sharedStore`): one
   * replica opening it opens it for all within `sharedSyncIntervalMs`, and one trial call runs
   * across replicas. Costs a store round trip per failure and per trial, and a read per sync
   * interval; the healthy path stays local. Without a store, or while it is unreachable, the
   * breaker is this process' own. Default false.
   */
  readonly shared?: boolean;
}

export interface BreakerRegistry {
  /**
   * The breaker for `name`, created on first use; the same instance afterwards. Throws when `name`
   * was first made with another `shared` setting.
   */
  get(name: string, options?: BreakerOptions): Breaker;
  execute<T>(name: string, fn: (signal: AbortSignal) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T>;
  /** State of `name`; `closed` for a name never used. */
  state(name: string): BreakerState;
  /** Every breaker created so far, sorted by name. */
  states(): BreakerSnapshot[];
}

const fromCockatiel = (state: CircuitState): BreakerState => {
  if (state === CircuitState.Closed) return 'closed';
  if (state === CircuitState.HalfOpen) return 'half-open';
  return 'open';
};

/**
 * Circuit breakers keyed by dependency name, on cockatiel's `ConsecutiveBreaker`.
 *
 * cockatiel measures the open period with `Date.now()`, which a test cannot control, so the
 * registry owns that one decision: cockatiel is configured to half-open immediately and the
 * registry keeps calls out until `recoveryTimeoutMs` has passed on the injected clock. Counting,
 * the trial call and the close/reopen decision stay cockatiel's.
 *
 * `state()` reports `half-open` as soon as the recovery timeout has passed (the next call is the
 * trial); `onStateChange` reports `half-open` when that trial call starts.
 */
export function createBreakerRegistry(options: BreakerRegistryOptions = {}): BreakerRegistry {
  const failureThreshold = options.failureThreshold ?? 5;
  const recoveryTimeoutMs = options.recoveryTimeoutMs ?? 30_000;
  if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1) {
    throw new RangeError(`failureThreshold must be a positive integer, got ${failureThreshold}`);
  }
  if (!Number.isFinite(recoveryTimeoutMs) || recoveryTimeoutMs < 0) {
    throw new RangeError(`recoveryTimeoutMs must be a non-negative number, got ${recoveryTimeoutMs}`);
  }
  const clock = options.clock ?? createSystemClock();
  const breakers = new Map<string, { readonly breaker: Breaker; readonly shared: boolean }>();
  // The local breakers a shared breaker falls back to while its store is unreachable.
  const fallbacks = new Map<string, Breaker>();

  const create = (name: string): Breaker => {
    const counter = new ConsecutiveBreaker(failureThreshold);
    const policy: CircuitBreakerPolicy = circuitBreaker(handleAll, {
      halfOpenAfter: 0,
      breaker: counter,
    });
    let openedAt: number | undefined;
    let reported: BreakerState = 'closed';

    const recovering = (): boolean => openedAt !== undefined && clock.now() - openedAt >= recoveryTimeoutMs;

    const state = (): BreakerState => {
      const inner = fromCockatiel(policy.state);
      return inner === 'open' && recovering() ? 'half-open' : inner;
    };

    policy.onStateChange((next) => {
      const to = fromCockatiel(next);
      const at = clock.now();
      if (to === 'open') openedAt = at;
      if (to === 'closed') openedAt = undefined;
      const from = reported;
      reported = to;
      if (from !== to) options.onStateChange?.({ name, from, to, at });
    });

    return {
      name,
      state,
      snapshot: () => ({
        name,
        state: state(),
        failures: counter.state,
        opened_at: openedAt === undefined ? null : new Date(openedAt).toISOString(),
      }),
      async execute(fn, signal) {
        const inner = policy.state;
        // A trial call is running: reject rather than queue behind it, so a failed trial does not
        // release a crowd of callers onto a dependency that is still down.
        if (inner === CircuitState.HalfOpen || inner === CircuitState.Isolated) {
          throw new CircuitOpenError(name);
        }
        if (inner === CircuitState.Open && !recovering()) {
          throw new CircuitOpenError(name, {
            retryAfterMs: (openedAt ?? clock.now()) + recoveryTimeoutMs - clock.now(),
          });
        }
        try {
          // Called in the same tick as the checks above, so no other call can slip in between.
          return await policy.execute(({ signal: s }) => fn(s), signal);
        } catch (error) {
          if (error instanceof BrokenCircuitError) throw new CircuitOpenError(name, { cause: error });
          throw error;
        }
      },
    };
  };

  const createShared = (name: string, store: SharedBreakerStore): Breaker =>
    createSharedBreaker({
      name,
      store,
      failureThreshold,
      recoveryTimeoutMs,
      syncIntervalMs: options.sharedSyncIntervalMs ?? 1_000,
      clock,
      fallback: () => {
        let local = fallbacks.get(name);
        if (local === undefined) {
          local = create(name);
          fallbacks.set(name, local);
        }
        return local;
      },
      onStateChange: options.onStateChange,
      onStoreError: (error) => options.onSharedStoreError?.(error, name),
    });

  const get = (name: string, breakerOptions: BreakerOptions = {}): Breaker => {
    const existing = breakers.get(name);
    if (existing !== undefined) {
      if (breakerOptions.shared !== undefined && breakerOptions.shared !== existing.shared) {
        throw new Error(`breaker "${name}" is already ${existing.shared ? 'shared' : 'local'}`);
      }
      return existing.breaker;
    }
    const shared = breakerOptions.shared === true;
    const store = options.sharedStore;
    const breaker = shared && store !== undefined ? createShared(name, store) : create(name);
    breakers.set(name, { breaker, shared });
    return breaker;
  };

  return {
    get,
    execute: (name, fn, signal) => get(name).execute(fn, signal),
    state: (name) => breakers.get(name)?.breaker.state() ?? 'closed',
    states: () =>
      [...breakers.values()].map(({ breaker }) => breaker.snapshot()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
}
