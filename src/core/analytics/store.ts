import type { Queryable } from '../../platform/db/port.ts';

export interface ModelUsage {
  readonly model: string;
  readonly decisions: number;
  readonly estimated_cost_usd: number;
}

/** Adds one routing decision to the model's running totals. */
export async function countDecision(tx: Queryable, model: string, estimatedCost: number, decidedAt: string): Promise<void> {
  await tx.query(
    `INSERT INTO analytics_model_usage (model, decisions, estimated_cost_usd, last_decided_at)
     VALUES ($1, 1, $2, $3)
     ON CONFLICT (model) DO UPDATE SET
       decisions = analytics_model_usage.decisions + 1,
       estimated_cost_usd = analytics_model_usage.estimated_cost_usd + EXCLUDED.estimated_cost_usd,
       last_decided_at = GREATEST(analytics_model_usage.last_decided_at, EXCLUDED.last_decided_at)`,
    [model, estimatedCost, decidedAt],
  );
}

export async function listModelUsage(db: Queryable): Promise<ModelUsage[]> {
  const { rows } = await db.query<{ model: string; decisions: string | number; estimated_cost_usd: string | number }>(
    'SELECT model, decisions, estimated_cost_usd FROM analytics_model_usage ORDER BY model',
  );
  return rows.map((r) => ({ model: r.model, decisions: Number(r.decisions), estimated_cost_usd: Number(r.estimated_cost_usd) }));
}
