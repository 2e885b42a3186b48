import type { Clock } from '../../../../src/platform/clock.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import { createBudgetIndex, type BudgetIndex } from '../../../../src/autonomous/ai-router/budgets/budget-index.ts';
import { createBudgetGuard, type BudgetGuardInternals } from '../../../../src/autonomous/ai-router/budgets/budget-guard.ts';
import { createBudgetStore, type BudgetStore } from '../../../../src/autonomous/ai-router/budgets/budget-store.ts';
import type { BudgetKey } from '../../../../src/autonomous/ai-router/budgets/periods.ts';

/** A clock the test moves by hand; sleep is real (nothing under test sleeps). */
export interface ManualClock extends Clock {
  set(iso: string): void;
  advance(ms: number): void;
}

export function manualClock(iso: string): ManualClock {
  let now = Date.parse(iso);
  return {
    now: () => now,
    sleep: (ms, signal) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      }),
    set: (to) => void (now = Date.parse(to)),
    advance: (ms) => void (now += ms),
  };
}

/** One replica's budgets: its own index (reloaded after its own changes only), store and guard. */
export interface Replica {
  readonly index: BudgetIndex;
  readonly store: BudgetStore;
  readonly guard: BudgetGuardInternals;
  put(key: BudgetKey, limitUsd: number): Promise<void>;
  reload(): Promise<void>;
}

export function replica(db: Database, clock: Clock, holdTtlMs = 60_000): Replica {
  const index = createBudgetIndex();
  const reload = async (): Promise<void> => index.replace(await store.loadKeys());
  const store = createBudgetStore({ db, onChanged: reload });
  const guard = createBudgetGuard({ db, clock, index, holdTtlMs });
  return {
    index,
    store,
    guard,
    reload,
    put: async (key, limitUsd) => {
      await store.put(key, limitUsd, clock.now(), { correlationId: 'test' });
    },
  };
}

export interface SpendRow {
  spent: number;
  held: number;
}

/** The spend row of one budget in the period starting on `periodStart`. */
export async function spendOf(db: Database, key: BudgetKey, periodStart: string): Promise<SpendRow> {
  const { rows } = await db.query<{ spent_usd: string; held_usd: string }>(
    `SELECT spent_usd, held_usd FROM ai_budget_spend
     WHERE tenant = $1 AND scope = $2 AND subject = $3 AND period = $4 AND period_start = $5::date`,
    [key.tenant, key.scope, key.subject, key.period, periodStart],
  );
  const row = rows[0];
  return row === undefined ? { spent: 0, held: 0 } : { spent: Number(row.spent_usd), held: Number(row.held_usd) };
}

/** A database that counts every statement and transaction sent through it. */
export function countingDatabase(db: Database): { db: Database; count(): number } {
  let count = 0;
  return {
    db: {
      ...db,
      query: (sql, params) => {
        count += 1;
        return db.query(sql, params);
      },
      exec: (sql) => {
        count += 1;
        return db.exec(sql);
      },
      transaction: (work) => {
        count += 1;
        return db.transaction(work);
      },
    },
    count: () => count,
  };
}
