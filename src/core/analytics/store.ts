import type { Queryable } from '../../platform/db/port.ts';

export interface ModelUsage {
  readonly model: string;
  readonly decisions: number;
  readonly estimated_cost_usd: number;
}

/** One routing decision as the counter sees it. */
export interface CountedDecision {
  readonly event_id: string;
  readonly model: string;
  readonly estimated_cost: number;
  readonly decided_at: string;
}

/**
 * Adds a batch of decisions to the per-model totals and records them in `consumer`'s inbox, in
 * one statement (so all or nothing). An event already in the inbox, or twice in the batch, is
 * counted once. Returns the ids that were counted now.
 */
export async function countDecisions(db: Queryable, consumer: string, decisions: readonly CountedDecision[]): Promise<Set<string>> {
  if (decisions.length === 0) return new Set();
  const { rows } = await db.query<{ event_id: string }>(
    `WITH batch AS (
       SELECT DISTINCT ON (event_id) event_id, model, estimated_cost, decided_at
       FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, model text, estimated_cost numeric, decided_at timestamptz)
     ), fresh AS (
       INSERT INTO inbox (consumer, event_id) SELECT $1, event_id FROM batch
       ON CONFLICT DO NOTHING
       RETURNING event_id
     ), counted AS (
       INSERT INTO analytics_model_usage (model, decisions, estimated_cost_usd, last_decided_at)
       SELECT b.model, count(*), sum(b.estimated_cost), max(b.decided_at)
       FROM batch b JOIN fresh f ON f.event_id = b.event_id
       GROUP BY b.model
       ON CONFLICT (model) DO UPDATE SET
         decisions = analytics_model_usage.decisions + EXCLUDED.decisions,
         estimated_cost_usd = analytics_model_usage.estimated_cost_usd + EXCLUDED.estimated_cost_usd,
         last_decided_at = GREATEST(analytics_model_usage.last_decided_at, EXCLUDED.last_decided_at)
     )
     SELECT event_id FROM fresh`,
    [consumer, JSON.stringify(decisions)],
  );
  return new Set(rows.map((row) => row.event_id));
}

export async function listModelUsage(db: Queryable): Promise<ModelUsage[]> {
  const { rows } = await db.query<{ model: string; decisions: string | number; estimated_cost_usd: string | number }>(
    'SELECT model, decisions, estimated_cost_usd FROM analytics_model_usage ORDER BY model',
  );
  return rows.map((r) => ({ model: r.model, decisions: Number(r.decisions), estimated_cost_usd: Number(r.estimated_cost_usd) }));
}
