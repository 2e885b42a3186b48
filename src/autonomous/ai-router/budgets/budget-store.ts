import type { Database, Queryable } from '../../../platform/db/port.ts';
import { appendEvent } from '../../../platform/events/index.ts';
import { budgetNotFound, budgetVersionMismatch, invalidBudget } from './errors.ts';
import { periodOf, resetsAtOf, type BudgetKey, type BudgetPeriod, type BudgetScope } from './periods.ts';

/** Subject of the event every budget change writes; each replica reloads its budget index on it. */
export const BUDGET_CHANGED = 'ai.budget.changed';

/** One budget as the API shows it, with the spend of its current period. */
export interface BudgetRecord {
  readonly scope: BudgetScope;
  readonly subject: string;
  readonly period: BudgetPeriod;
  readonly limit_usd: number;
  readonly spent_usd: number;
  /** Money held for calls in flight. */
  readonly held_usd: number;
  /** limit - spent - held, never below 0. */
  readonly remaining_usd: number;
  /** First day of the current period (UTC). */
  readonly period_start: string;
  readonly resets_at: string;
  readonly version: number;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface BudgetPage {
  readonly items: BudgetRecord[];
  readonly next_cursor: string | null;
}

/** Who caused a change, carried into its event. */
export interface ChangeContext {
  readonly correlationId: string;
  readonly traceparent?: string;
}

export interface BudgetStore {
  /** Every budget of every tenant: what a replica's index is built from. */
  loadKeys(): Promise<BudgetKey[]>;
  /** The tenant's budgets ordered by scope, subject and period, `limit` at a time after `cursor`. */
  list(tenant: string, now: number, limit: number, cursor?: string): Promise<BudgetPage>;
  /** @throws BUDGET_NOT_FOUND */
  get(key: BudgetKey, now: number): Promise<BudgetRecord>;
  /**
   * Creates the budget or replaces its limit (the period's spend stays), writing `ai.budget.changed`
   * in the same transaction. With `expectedVersion` the budget must exist at that version.
   * @throws BUDGET_NOT_FOUND, BUDGET_VERSION_MISMATCH
   */
  put(
    key: BudgetKey,
    limitUsd: number,
    now: number,
    context: ChangeContext,
    expectedVersion?: number,
  ): Promise<{ record: BudgetRecord; created: boolean }>;
  /** @throws BUDGET_NOT_FOUND */
  remove(key: BudgetKey, context: ChangeContext): Promise<void>;
  /** Whether the tenant has a budget on this API key or has seen a call made with it. */
  knowsApiKey(tenant: string, apiKeyId: string): Promise<boolean>;
}

interface BudgetRow {
  scope: BudgetScope;
  subject: string;
  period: BudgetPeriod;
  limit_usd: string;
  version: number;
  created_at: Date;
  updated_at: Date;
  spent_usd: string | null;
  held_usd: string | null;
}

// The spend row of each budget's current period: the day's for daily budgets, the month's for monthly ones.
const SELECT_WITH_SPEND = `
  SELECT b.scope, b.subject, b.period, b.limit_usd, b.version, b.created_at, b.updated_at, s.spent_usd, s.held_usd
  FROM ai_budgets b
  LEFT JOIN ai_budget_spend s
    ON s.tenant = b.tenant AND s.scope = b.scope AND s.subject = b.subject AND s.period = b.period
   AND s.period_start = CASE b.period WHEN 'day' THEN $2::date ELSE $3::date END`;

/** The budgets' SQL. `onChanged` runs after each committed change (reload this replica's index, wake the relay). */
export function createBudgetStore(options: { db: Database; onChanged: () => Promise<void> }): BudgetStore {
  const { db, onChanged } = options;
  const periodParams = (now: number): [string, string] => [periodOf('day', now).start, periodOf('month', now).start];

  const changed = async (tx: Queryable, key: BudgetKey, action: string, limitUsd: number | null, context: ChangeContext): Promise<void> => {
    await appendEvent(tx, {
      event_type: BUDGET_CHANGED,
      source_service: 'autonomous.ai-router',
      correlation_id: context.correlationId,
      traceparent: context.traceparent,
      key: 'ai-budgets',
      payload: { tenant: key.tenant, scope: key.scope, subject: key.subject, period: key.period, action, limit_usd: limitUsd },
    });
  };

  const getRow = async (q: Queryable, key: BudgetKey, now: number): Promise<BudgetRow | undefined> => {
    const { rows } = await q.query<BudgetRow>(
      `${SELECT_WITH_SPEND} WHERE b.tenant = $1 AND b.scope = $4 AND b.subject = $5 AND b.period = $6`,
      [key.tenant, ...periodParams(now), key.scope, key.subject, key.period],
    );
    return rows[0];
  };

  return {
    async loadKeys() {
      const { rows } = await db.query<BudgetKey>('SELECT tenant, scope, subject, period FROM ai_budgets');
      return rows;
    },

    async list(tenant, now, limit, cursor) {
      const after = cursor === undefined ? null : decodeCursor(cursor);
      if (cursor !== undefined && after === null) throw invalidBudget('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<BudgetRow>(
        `${SELECT_WITH_SPEND}
         WHERE b.tenant = $1 AND ($4::text IS NULL OR (b.scope, b.subject, b.period) > ($4::text, $5::text, $6::text))
         ORDER BY b.scope, b.subject, b.period LIMIT $7`,
        [tenant, ...periodParams(now), after?.[0] ?? null, after?.[1] ?? null, after?.[2] ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map((row) => toRecord(row, now));
      const last = items.at(-1);
      return { items, next_cursor: rows.length > limit && last ? encodeCursor([last.scope, last.subject, last.period]) : null };
    },

    async get(key, now) {
      const row = await getRow(db, key, now);
      if (row === undefined) throw budgetNotFound(key);
      return toRecord(row, now);
    },

    async put(key, limitUsd, now, context, expectedVersion) {
      const result = await db.transaction(async (tx) => {
        // Locks the budget (if it exists) so the version check and the write see the same row.
        const { rows } = await tx.query<{ version: number }>(
          'SELECT version FROM ai_budgets WHERE tenant = $1 AND scope = $2 AND subject = $3 AND period = $4 FOR UPDATE',
          [key.tenant, key.scope, key.subject, key.period],
        );
        const current = rows[0];
        if (expectedVersion !== undefined) {
          if (current === undefined) throw budgetNotFound(key);
          if (current.version !== expectedVersion) throw budgetVersionMismatch(expectedVersion, current.version);
        }
        // ON CONFLICT covers a concurrent first PUT of the same budget: the later one becomes a replace.
        const { rows: written } = await tx.query<{ created: boolean }>(
          `INSERT INTO ai_budgets (tenant, scope, subject, period, limit_usd) VALUES ($1, $2, $3, $4, $5::numeric)
           ON CONFLICT (tenant, scope, subject, period) DO UPDATE
             SET limit_usd = EXCLUDED.limit_usd, version = ai_budgets.version + 1, updated_at = now()
           RETURNING (xmax = 0) AS created`,
          [key.tenant, key.scope, key.subject, key.period, limitUsd],
        );
        const created = written[0]?.created === true;
        await changed(tx, key, created ? 'created' : 'updated', limitUsd, context);
        return { record: toRecord((await getRow(tx, key, now)) as BudgetRow, now), created };
      });
      await onChanged();
      return result;
    },

    async remove(key, context) {
      await db.transaction(async (tx) => {
        const { rowCount } = await tx.query('DELETE FROM ai_budgets WHERE tenant = $1 AND scope = $2 AND subject = $3 AND period = $4', [
          key.tenant,
          key.scope,
          key.subject,
          key.period,
        ]);
        if (rowCount === 0) throw budgetNotFound(key);
        await changed(tx, key, 'deleted', null, context);
      });
      await onChanged();
    },

    async knowsApiKey(tenant, apiKeyId) {
      const { rowCount } = await db.query(
        `SELECT 1 FROM ai_budgets WHERE tenant = $1 AND scope = 'api_key' AND subject = $2
         UNION ALL
         SELECT 1 FROM ai_usage_daily WHERE tenant = $1 AND api_key_id = $2
         LIMIT 1`,
        [tenant, apiKeyId],
      );
      return rowCount > 0;
    },
  };
}

function toRecord(row: BudgetRow, now: number): BudgetRecord {
  const limit = Number(row.limit_usd);
  const spent = Number(row.spent_usd ?? 0);
  const held = Number(row.held_usd ?? 0);
  const { start } = periodOf(row.period, now);
  return {
    scope: row.scope,
    subject: row.subject,
    period: row.period,
    limit_usd: limit,
    spent_usd: spent,
    held_usd: held,
    remaining_usd: Math.max(0, round8(limit - spent - held)),
    period_start: start,
    resets_at: resetsAtOf(row.period, start).toISOString(),
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

const round8 = (value: number): number => Math.round(value * 1e8) / 1e8;

const encodeCursor = (parts: readonly string[]): string => Buffer.from(JSON.stringify(parts)).toString('base64url');

/** A cursor this store made, or null for anything else. */
function decodeCursor(cursor: string): [string, string, string] | null {
  try {
    const parts: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parts) && parts.length === 3 && parts.every((p) => typeof p === 'string')) return parts as [string, string, string];
  } catch {
    // Not ours: reported as null below.
  }
  return null;
}
