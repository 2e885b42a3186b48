import type { Queryable } from '../../../platform/db/port.ts';

/** One proxied call as the usage counter sees it (from `ai.request.completed` / `ai.request.failed`). */
export interface CountedCall {
  readonly event_id: string;
  readonly tenant: string;
  readonly api_key_id: string | null;
  readonly model: string;
  /** UTC day of the event, `YYYY-MM-DD`. */
  readonly day: string;
  readonly failed: boolean;
  readonly cached: boolean;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly cost_usd: number;
}

/** What `GET /usage` can group by; any subset, in any order. */
export type UsageDimension = 'model' | 'day' | 'api_key';
export const USAGE_DIMENSIONS: readonly UsageDimension[] = ['model', 'day', 'api_key'];

export interface UsageFigures {
  readonly requests: number;
  readonly failures: number;
  readonly cached: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly cost_usd: number;
}

export interface UsageRow extends UsageFigures {
  readonly model?: string;
  readonly day?: string;
  readonly api_key_id?: string | null;
}

/**
 * Adds a batch of calls to the daily totals and records them in `consumer`'s inbox, in one
 * statement (all or nothing). An event already in the inbox, or twice in the batch, counts once.
 * Returns the ids counted now.
 */
export async function countCalls(db: Queryable, consumer: string, calls: readonly CountedCall[]): Promise<Set<string>> {
  if (calls.length === 0) return new Set();
  const { rows } = await db.query<{ event_id: string }>(
    `WITH batch AS (
       SELECT DISTINCT ON (event_id) *
       FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, tenant text, api_key_id text, model text, day date,
            failed boolean, cached boolean, prompt_tokens bigint, completion_tokens bigint, cost_usd numeric)
     ), fresh AS (
       INSERT INTO inbox (consumer, event_id) SELECT $1, event_id FROM batch
       ON CONFLICT DO NOTHING
       RETURNING event_id
     ), counted AS (
       INSERT INTO ai_usage_daily AS u (tenant, api_key_id, model, day, requests, failures, cached, prompt_tokens, completion_tokens, cost_usd)
       SELECT b.tenant, b.api_key_id, b.model, b.day, count(*), count(*) FILTER (WHERE b.failed), count(*) FILTER (WHERE b.cached),
              sum(b.prompt_tokens), sum(b.completion_tokens), sum(b.cost_usd)
       FROM batch b JOIN fresh f ON f.event_id = b.event_id
       GROUP BY b.tenant, b.api_key_id, b.model, b.day
       ON CONFLICT ON CONSTRAINT ai_usage_daily_key DO UPDATE SET
         requests = u.requests + EXCLUDED.requests,
         failures = u.failures + EXCLUDED.failures,
         cached = u.cached + EXCLUDED.cached,
         prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
         completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
         cost_usd = u.cost_usd + EXCLUDED.cost_usd
     )
     SELECT event_id FROM fresh`,
    [consumer, JSON.stringify(calls)],
  );
  return new Set(rows.map((row) => row.event_id));
}

const COLUMN: Record<UsageDimension, string> = { model: 'model', day: 'day', api_key: 'api_key_id' };

/**
 * The tenant's usage from `from` to `to` (inclusive, `YYYY-MM-DD`), one row per combination of
 * `groupBy`'s dimensions, plus the totals over the range.
 */
export async function queryUsage(
  db: Queryable,
  tenant: string,
  from: string,
  to: string,
  groupBy: readonly UsageDimension[],
): Promise<{ items: UsageRow[]; totals: UsageFigures }> {
  const columns = groupBy.map((dimension) => COLUMN[dimension]);
  const select = columns.length === 0 ? '' : `${columns.join(', ')}, `;
  // GROUPING SETS gives the groups and the grand total in one scan; `total` marks the latter.
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${select}GROUPING(tenant) = 1 AS total,
            coalesce(sum(requests), 0)::bigint AS requests, coalesce(sum(failures), 0)::bigint AS failures,
            coalesce(sum(cached), 0)::bigint AS cached, coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
            coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens, coalesce(sum(cost_usd), 0)::text AS cost_usd
     FROM ai_usage_daily
     WHERE tenant = $1 AND day BETWEEN $2::date AND $3::date
     GROUP BY GROUPING SETS ((tenant${columns.map((c) => `, ${c}`).join('')}), ())
     ORDER BY total${columns.map((c) => `, ${c}`).join('')}`,
    [tenant, from, to],
  );
  const items: UsageRow[] = [];
  let totals: UsageFigures = { requests: 0, failures: 0, cached: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 };
  for (const row of rows) {
    const figures: UsageFigures = {
      requests: Number(row.requests),
      failures: Number(row.failures),
      cached: Number(row.cached),
      prompt_tokens: Number(row.prompt_tokens),
      completion_tokens: Number(row.completion_tokens),
      cost_usd: Number(row.cost_usd),
    };
    if (row.total === true) {
      totals = figures;
      continue;
    }
    if (groupBy.length === 0) continue;
    items.push({
      ...(groupBy.includes('model') ? { model: row.model as string } : {}),
      ...(groupBy.includes('day') ? { day: row.day as string } : {}),
      ...(groupBy.includes('api_key') ? { api_key_id: row.api_key_id as string | null } : {}),
      ...figures,
    });
  }
  return { items, totals };
}
