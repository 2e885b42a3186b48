import type { Database, Queryable } from '../../../platform/db/port.ts';
import { compareBudgetKeys, type BudgetKey } from './periods.ts';

/** A budget in one of its periods: the spend row a hold goes on. */
export interface PeriodBudget extends BudgetKey {
  /** First day of the period, `YYYY-MM-DD` (UTC). */
  readonly periodStart: string;
}

/** Why a budget did not take a hold. */
export type HoldRefusal =
  { readonly kind: 'gone' } | { readonly kind: 'exceeded'; readonly limitUsd: number; readonly spentUsd: number; readonly heldUsd: number };

const KEY_PARAMS = 'tenant = $1 AND scope = $2 AND subject = $3 AND period = $4';
const keyParams = (key: PeriodBudget): unknown[] => [key.tenant, key.scope, key.subject, key.period, key.periodStart];

/** The hold a reservation takes on each budget. */
export interface HoldRequest {
  readonly holdId: string;
  readonly amountUsd: number;
  /** After this the sweep may give the money back: `now + ai.budgets.hold_ttl`. */
  readonly expiresAt: Date;
}

/**
 * Adds the hold's amount to the budget's held money if spent + held + amount stays within its
 * limit (and something is left of it), creating the period's row on first use, and records the
 * hold row, all in one statement: the upsert takes the row lock, so concurrent holds on one budget,
 * from any process, queue on it and each sees the others' committed money, and the lock is held
 * for as short a time as one statement allows. The limit is read from `ai_budgets`, not from
 * memory, so a limit changed on another replica applies at once. Returns null when held.
 */
export async function holdOn(q: Queryable, key: PeriodBudget, hold: HoldRequest): Promise<HoldRefusal | null> {
  const { rowCount } = await q.query(
    `WITH held AS (
       INSERT INTO ai_budget_spend AS s (tenant, scope, subject, period, period_start, held_usd)
       SELECT b.tenant, b.scope, b.subject, b.period, $5::date, $6::numeric
       FROM ai_budgets b
       WHERE b.${KEY_PARAMS.replaceAll(' AND ', ' AND b.')} AND $6::numeric <= b.limit_usd AND b.limit_usd > 0
       ON CONFLICT (tenant, scope, subject, period, period_start) DO UPDATE
         SET held_usd = s.held_usd + EXCLUDED.held_usd
         WHERE (SELECT s.spent_usd + s.held_usd + EXCLUDED.held_usd <= l.limit_usd AND s.spent_usd + s.held_usd < l.limit_usd
                FROM ai_budgets l
                WHERE l.tenant = s.tenant AND l.scope = s.scope AND l.subject = s.subject AND l.period = s.period)
       RETURNING s.tenant, s.scope, s.subject, s.period, s.period_start
     )
     INSERT INTO ai_budget_holds (hold_id, tenant, scope, subject, period, period_start, amount_usd, expires_at)
     SELECT $7::uuid, tenant, scope, subject, period, period_start, $6::numeric, $8::timestamptz FROM held`,
    [...keyParams(key), hold.amountUsd, hold.holdId, hold.expiresAt.toISOString()],
  );
  if (rowCount === 1) return null;
  // Refused, or the budget was deleted since this replica last heard of it: tell them apart.
  const { rows } = await q.query<{ limit_usd: string; spent_usd: string | null; held_usd: string | null }>(
    `SELECT b.limit_usd, s.spent_usd, s.held_usd
     FROM ai_budgets b
     LEFT JOIN ai_budget_spend s ON s.tenant = b.tenant AND s.scope = b.scope AND s.subject = b.subject
                                 AND s.period = b.period AND s.period_start = $5::date
     WHERE b.${KEY_PARAMS.replaceAll(' AND ', ' AND b.')}`,
    keyParams(key),
  );
  const row = rows[0];
  if (row === undefined) return { kind: 'gone' };
  return { kind: 'exceeded', limitUsd: Number(row.limit_usd), spentUsd: Number(row.spent_usd ?? 0), heldUsd: Number(row.held_usd ?? 0) };
}

/**
 * Ends a hold: its rows are deleted and each budget's held money drops by what the row still held
 * (nothing if the sweep already released it), while `chargeUsd` is added to spent on every budget
 * the hold was made on. Run for a settle (charge = the call's real cost) or a release (charge 0).
 */
export async function endHold(db: Database, holdId: string, budgets: readonly PeriodBudget[], chargeUsd: number): Promise<void> {
  const [only] = budgets;
  if (budgets.length === 1 && only !== undefined) {
    // One budget: one statement, atomic without a transaction, and the row lock is held only by it.
    await db.query(
      `WITH gone AS (DELETE FROM ai_budget_holds WHERE hold_id = $6 RETURNING amount_usd)
       UPDATE ai_budget_spend
       SET held_usd = held_usd - coalesce((SELECT sum(amount_usd) FROM gone), 0), spent_usd = spent_usd + $7::numeric
       WHERE ${KEY_PARAMS} AND period_start = $5::date`,
      [...keyParams(only), holdId, chargeUsd],
    );
    return;
  }
  // Several budgets: every hold row goes first, in one statement, so this never waits on a hold row
  // while holding a spend row that the sweep (which locks hold rows, then spend rows) may want.
  await db.transaction(async (tx) => {
    const { rows } = await tx.query<{ scope: string; period: string; amount_usd: string }>(
      'DELETE FROM ai_budget_holds WHERE hold_id = $1 RETURNING scope, period, amount_usd',
      [holdId],
    );
    const held = new Map(rows.map((row) => [`${row.scope}/${row.period}`, row.amount_usd]));
    for (const budget of budgets) {
      const amount = held.get(`${budget.scope}/${budget.period}`) ?? '0';
      if (amount === '0' && chargeUsd === 0) continue;
      await tx.query(
        `UPDATE ai_budget_spend SET held_usd = held_usd - $6::numeric, spent_usd = spent_usd + $7::numeric
         WHERE ${KEY_PARAMS} AND period_start = $5::date`,
        [...keyParams(budget), amount, chargeUsd],
      );
    }
  });
}

/**
 * Releases holds whose `expires_at` has passed (their process died before settling), optionally
 * only those on `only`'s budgets. Rows another transaction holds (a settle in progress) are
 * skipped; the money goes back to each budget in lock order. Returns how many hold rows it released.
 */
export async function releaseExpiredHolds(db: Database, now: Date, only?: readonly PeriodBudget[]): Promise<number> {
  return db.transaction(async (tx) => {
    const filter =
      only === undefined
        ? ''
        : `AND (tenant, scope, subject, period, period_start) IN
             (SELECT * FROM jsonb_to_recordset($2::jsonb) AS r(tenant text, scope text, subject text, period text, period_start date))`;
    const { rows } = await tx.query<ExpiredRow>(
      `WITH expired AS (
         SELECT hold_id, scope, period FROM ai_budget_holds
         WHERE expires_at <= $1::timestamptz ${filter}
         LIMIT 1000
         FOR UPDATE SKIP LOCKED
       ), gone AS (
         DELETE FROM ai_budget_holds h USING expired e
         WHERE h.hold_id = e.hold_id AND h.scope = e.scope AND h.period = e.period
         RETURNING h.tenant, h.scope, h.subject, h.period, h.period_start, h.amount_usd
       )
       SELECT tenant, scope, subject, period, period_start, sum(amount_usd)::text AS amount, count(*)::int AS n
       FROM gone GROUP BY tenant, scope, subject, period, period_start`,
      only === undefined ? [now.toISOString()] : [now.toISOString(), JSON.stringify(only.map(toRow))],
    );
    const budgets = rows
      .map((row) => ({ ...row, periodStart: row.period_start }))
      .sort((a, b) => compareBudgetKeys(a, b) || (a.periodStart < b.periodStart ? -1 : 1));
    let released = 0;
    for (const budget of budgets) {
      await tx.query(`UPDATE ai_budget_spend SET held_usd = held_usd - $6::numeric WHERE ${KEY_PARAMS} AND period_start = $5::date`, [
        ...keyParams(budget),
        budget.amount,
      ]);
      released += budget.n;
    }
    return released;
  });
}

interface ExpiredRow extends BudgetKey {
  readonly period_start: string;
  readonly amount: string;
  readonly n: number;
}

const toRow = (b: PeriodBudget) => ({
  tenant: b.tenant,
  scope: b.scope,
  subject: b.subject,
  period: b.period,
  period_start: b.periodStart,
});
