import type { Queryable } from '../../../platform/db/port.ts';
import type { LearningModelEstimates } from './estimates.ts';
import { callObservations } from './observations.ts';
import { readOutcomesSince, type StoredOutcome } from './store.ts';

export interface WarmUpOptions {
  /** Replays outcomes recorded at or after this. */
  readonly since: Date;
  /** At most this many, the newest. */
  readonly maxRows: number;
  /** Outcomes read per statement: what warm-up holds in memory at once, here and in the database. */
  readonly pageSize: number;
}

/**
 * Records a stored outcome in the estimates as it was recorded when it happened: a feedback as
 * `outcome` evidence (nothing when it says nothing), a proxied call as the `call` evidence of its attempts.
 */
export function replayOutcome(estimates: LearningModelEstimates, row: StoredOutcome): void {
  if (row.source === 'feedback') {
    if (row.success === null) return;
    estimates.record({
      tenant: row.tenant,
      evidence: 'outcome',
      model: row.model,
      taskType: row.task_type,
      complexity: row.complexity,
      success: row.quality_score ?? (row.success ? 1 : 0),
      latencyMs: row.latency_ms,
      at: row.recorded_at,
    });
    return;
  }
  const observations = callObservations({
    tenant: row.tenant,
    cached: false,
    attempts: row.attempts ?? [],
    task_type: row.task_type,
    complexity: row.complexity,
    at: row.recorded_at,
  });
  for (const observation of observations) estimates.record(observation);
}

/**
 * Replays the newest `maxRows` outcomes recorded since `since` into the estimates, oldest first,
 * one page at a time, so warming up from many stored outcomes costs a page of memory, not all of
 * them. Returns how many were replayed.
 */
export function warmUpEstimates(db: Queryable, estimates: LearningModelEstimates, options: WarmUpOptions): Promise<number> {
  return readOutcomesSince(db, { since: options.since, limit: options.maxRows, pageSize: options.pageSize }, (page) => {
    for (const row of page) replayOutcome(estimates, row);
  });
}
