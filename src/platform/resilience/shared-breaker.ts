import type { Clock } from '../clock.ts';
import type { Breaker, BreakerSnapshot, BreakerState, BreakerStateChange } from './breakers.ts';
import { CircuitOpenError } from './errors.ts';
import type { SharedBreakerStore, SharedBreakerView, SharedTransition } from './shared-breaker-store.ts';

export interface SharedBreakerOptions {
  readonly name: string;
  readonly store: SharedBreakerStore;
  readonly failureThreshold: number;
  readonly recoveryTimeoutMs: number;
  /** How stale this process' copy of the state may get: another replica's opening is seen within it. */
  readonly syncIntervalMs: number;
  readonly clock: Clock;
  /** Decides while the store is unreachable: this process' own breaker of the same name. */
  readonly fallback: () => Breaker;
  readonly onStateChange?: ((change: BreakerStateChange) => void) | undefined;
  /** The store failed; the call was decided locally. */
  readonly onStoreError?: ((error: unknown) => void) | undefined;
}

/** What this process last read of the shared state, and when (its clock). */
interface Copy {
  readonly view: SharedBreakerView;
  readonly readAt: number;
}

const CLOSED: SharedBreakerView = { state: 'closed', failures: 0, openedAt: null, retryAfterMs: 0 };

/**
 * A breaker whose state lives in a store every replica shares. A call costs no store round trip
 * while this process' copy is fresher than `syncIntervalMs` and closed with no failures counted;
 * a failure, a success after failures, and every trial are reported to the store, which decides
 * atomically: the replica that crosses the threshold opens it for all, and exactly one replica
 * wins the half-open trial. While the store is unreachable, calls are decided by `fallback`.
 * State changes are reported by the replica that made them.
 */
export function createSharedBreaker(options: SharedBreakerOptions): Breaker {
  const { name, store, clock } = options;
  let copy: Copy = { view: CLOSED, readAt: -Infinity };
  let storeDownUntil = -Infinity;

  const remember = (view: SharedBreakerView): SharedBreakerView => {
    copy = { view, readAt: clock.now() };
    return view;
  };

  const report = (transition: SharedTransition): void => {
    remember(transition.view);
    if (transition.from !== transition.to) options.onStateChange?.({ name, from: transition.from, to: transition.to, at: clock.now() });
  };

  const storeFailed = (error: unknown): void => {
    storeDownUntil = clock.now() + options.syncIntervalMs;
    options.onStoreError?.(error);
  };

  /** Retry time left by this process' copy (the store's own count, aged by how long ago it was read). */
  const retryAfter = (): number => Math.max(0, copy.view.retryAfterMs - (clock.now() - copy.readAt));

  const state = (): BreakerState => {
    const { view } = copy;
    return view.state === 'open' && retryAfter() === 0 ? 'half-open' : view.state;
  };

  /** Runs `fn` as the one trial call of every replica; its outcome closes or reopens the breaker for all. */
  const runTrial = async <T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, signal: AbortSignal): Promise<T> => {
    options.onStateChange?.({ name, from: 'open', to: 'half-open', at: clock.now() });
    let result: T;
    try {
      result = await fn(signal);
    } catch (error) {
      await store
        .failure(name, { threshold: options.failureThreshold, recoveryMs: options.recoveryTimeoutMs, trial: true })
        .then(report, storeFailed);
      throw error;
    }
    await store.success(name, true).then(report, storeFailed);
    return result;
  };

  /**
   * Whether to call now ('call'), as the one trial ('trial'), or by the local breaker because the
   * store cannot be reached ('local'). Throws CircuitOpenError while open.
   */
  const decide = async (): Promise<'call' | 'trial' | 'local'> => {
    const now = clock.now();
    if (now < storeDownUntil) return 'local';
    try {
      if (now - copy.readAt >= options.syncIntervalMs) remember(await store.read(name));
      if (copy.view.state === 'closed') return 'call';
      if (retryAfter() > 0) throw new CircuitOpenError(name, { retryAfterMs: retryAfter() });
      const claim = await store.claimTrial(name, options.recoveryTimeoutMs);
      if (claim.outcome === 'granted') return 'trial';
      if (claim.outcome === 'closed') {
        remember(CLOSED);
        return 'call';
      }
      remember({ ...copy.view, state: 'open', retryAfterMs: claim.retryAfterMs });
      throw new CircuitOpenError(name, { retryAfterMs: claim.retryAfterMs });
    } catch (error) {
      if (error instanceof CircuitOpenError) throw error;
      storeFailed(error);
      return 'local';
    }
  };

  return {
    name,
    state,
    snapshot: (): BreakerSnapshot => ({
      name,
      state: state(),
      failures: copy.view.failures,
      opened_at: copy.view.openedAt === null ? null : new Date(copy.view.openedAt).toISOString(),
    }),
    async execute<T>(fn: (signal: AbortSignal) => PromiseLike<T> | T, callerSignal?: AbortSignal): Promise<T> {
      const decision = await decide();
      if (decision === 'local') return options.fallback().execute(fn, callerSignal);
      const signal = callerSignal ?? new AbortController().signal;
      if (decision === 'trial') return runTrial(fn, signal);
      let result: T;
      try {
        result = await fn(signal);
      } catch (error) {
        await store
          .failure(name, { threshold: options.failureThreshold, recoveryMs: options.recoveryTimeoutMs, trial: false })
          .then(report, storeFailed);
        throw error;
      }
      // A success resets the shared count only when there is one to reset: no write on the healthy path.
      if (copy.view.failures > 0) await store.success(name, false).then(report, storeFailed);
      return result;
    },
  };
}
