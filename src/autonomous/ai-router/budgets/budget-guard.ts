import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../platform/clock.ts';
import type { Database, Queryable } from '../../../platform/db/port.ts';
import type { Tenancy } from '../../../platform/http/caller.ts';
import { BlocksError } from '../../../platform/errors.ts';
import type { BudgetIndex } from './budget-index.ts';
import { budgetExceeded } from './errors.ts';
import { periodOf, type BudgetKey } from './periods.ts';
import { endHold, holdOn, releaseExpiredHolds, type PeriodBudget } from './spend-store.ts';

/**
 * Money set aside for one call in flight. Settle it with what the call cost once known (a stream
 * that ended early cost what it delivered), or release it when the call delivered nothing; both
 * are idempotent (the second call of either does nothing and resolves when the first is done). A
 * hold never settled nor released (its process died) is
 * given back after `ai.budgets.hold_ttl`, which must therefore exceed the longest call (a stream
 * included): a hold swept while its call still runs is still charged when settled, but meanwhile
 * its money was free for other calls.
 */
export interface BudgetHold {
  /**
   * Moves the hold into spent as `actualUsd`, on every budget it was made on. The real cost may
   * exceed the estimate held: a call that set no `max_tokens` is estimated with the task type's
   * expected output length, and a longer answer is charged in full, so a budget can end its period
   * somewhat over its limit, by at most what the calls in flight produced beyond their estimates.
   * Callers bound that by estimating with `max_tokens` whenever the request gives it (the worst
   * case), and the next reservation on an overspent budget is refused.
   */
  settle(actualUsd: number): Promise<void>;
  /** Gives the held money back (the call failed before delivering anything). */
  release(): Promise<void>;
}

export interface BudgetGuard {
  /**
   * Atomically holds estimatedUsd on every budget that applies (tenant and API key, daily and monthly).
   * @throws BlocksError BUDGET_EXCEEDED (402) naming the budget, its limit, spent+held and when the period resets.
   * Costs nothing (no I/O) when no budget applies to the caller.
   */
  reserve(caller: Tenancy, estimatedUsd: number): Promise<BudgetHold>;
}

export interface BudgetGuardOptions {
  readonly db: Database;
  readonly clock: Clock;
  /** Which budgets exist, kept current by the module (`ai.budget.changed`). */
  readonly index: BudgetIndex;
  /** How long a hold survives its process: `ai.budgets.hold_ttl`. */
  readonly holdTtlMs: number;
  /** Told about each refusal (metrics). */
  readonly onRefused?: (budget: Pick<BudgetKey, 'scope' | 'period'>) => void;
}

/** The guard plus the sweep that gives back holds of processes that died. */
export interface BudgetGuardInternals extends BudgetGuard {
  /** Releases every expired hold; returns how many hold rows it released. */
  releaseExpired(): Promise<number>;
}

const settled = Promise.resolve();
/** What a caller under no budget gets: nothing was held, so there is nothing to end. */
const NO_HOLD: BudgetHold = Object.freeze({ settle: () => settled, release: () => settled });

class Refused extends Error {
  readonly error: BlocksError;
  constructor(error: BlocksError) {
    super(error.message);
    this.error = error;
  }
}

/**
 * The budget guard. reserve() takes a conditional, row-locked hold on each applicable budget in a
 * fixed order (so concurrent reservations never deadlock), in one transaction that rolls all of
 * them back if any budget refuses (one statement, no transaction, when a single budget applies);
 * PostgreSQL's row locks make this exact across processes. A hold is charged to the period it was
 * taken in, even when it is settled after that period ended.
 */
export function createBudgetGuard(options: BudgetGuardOptions): BudgetGuardInternals {
  const { db, clock, index, holdTtlMs } = options;

  const attempt = async (budgets: readonly PeriodBudget[], amountUsd: number, now: number): Promise<BudgetHold> => {
    const hold = { holdId: randomUUID(), amountUsd, expiresAt: new Date(now + holdTtlMs) };
    const take = async (q: Queryable): Promise<BudgetHold> => {
      const held: PeriodBudget[] = [];
      for (const budget of budgets) {
        const refusal = await holdOn(q, budget, hold);
        if (refusal === null) held.push(budget);
        else if (refusal.kind === 'exceeded') {
          // Throwing rolls back the holds taken on the budgets before this one.
          throw new Refused(
            budgetExceeded(
              { ...budget, ...refusal, requestedUsd: amountUsd, resetsAt: periodOf(budget.period, now).resetsAt },
              clock.now(),
            ),
          );
        }
      }
      return held.length === 0 ? NO_HOLD : createHold(db, hold.holdId, held);
    };
    // A single budget needs no transaction: its one statement is atomic, and a round trip shorter.
    return budgets.length === 1 ? take(db) : db.transaction(take);
  };

  return {
    async reserve(caller, estimatedUsd) {
      const keys = index.applicable(caller);
      if (keys.length === 0) return NO_HOLD;
      if (!Number.isFinite(estimatedUsd) || estimatedUsd < 0)
        throw new RangeError(`estimatedUsd must be a finite amount >= 0, got ${estimatedUsd}`);
      const now = clock.now();
      const budgets = keys.map((key) => ({ ...key, periodStart: periodOf(key.period, now).start }));
      try {
        return await attempt(budgets, estimatedUsd, now);
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        // Money held by calls whose process died may be what is in the way; give it back and try once more.
        if ((await releaseExpiredHolds(db, new Date(now), budgets)) === 0) return refuse(error);
        try {
          return await attempt(budgets, estimatedUsd, now);
        } catch (again) {
          if (again instanceof Refused) return refuse(again);
          throw again;
        }
      }
    },
    releaseExpired: () => releaseExpiredHolds(db, new Date(clock.now())),
  };

  function refuse(refused: Refused): never {
    options.onRefused?.(refused.error.extensions.budget as Pick<BudgetKey, 'scope' | 'period'>);
    throw refused.error;
  }
}

function createHold(db: Database, holdId: string, budgets: readonly PeriodBudget[]): BudgetHold {
  let ending: Promise<void> | undefined;
  const end = (chargeUsd: number): Promise<void> => {
    if (ending !== undefined) return ending;
    ending = endHold(db, holdId, budgets, chargeUsd).catch((error: unknown) => {
      // Nothing was changed: let a retry try again rather than pretend the hold ended.
      ending = undefined;
      throw error;
    });
    return ending;
  };
  return {
    settle(actualUsd) {
      if (!Number.isFinite(actualUsd) || actualUsd < 0)
        return Promise.reject(new RangeError(`actualUsd must be a finite amount >= 0, got ${actualUsd}`));
      return end(actualUsd);
    },
    release: () => end(0),
  };
}
