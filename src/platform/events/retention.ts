import type { Database } from '../db/port.ts';
import type { Logger } from '../logger.ts';
import { createPeriodicJob, type PeriodicJob } from '../periodic-job.ts';

export interface RetentionPolicy {
  /** Published events older than this are deleted; 0 keeps them forever. Unpublished events are never deleted. */
  readonly eventsMs: number;
  /** Inbox rows older than this are deleted; 0 keeps them forever. Keep it far above any redelivery delay. */
  readonly inboxMs: number;
}

export interface PruneResult {
  readonly events: number;
  readonly inbox: number;
}

/** Rows deleted per statement, so a large backlog never holds locks for long. */
const BATCH = 5_000;

async function deleteInBatches(db: Database, sql: string, cutoff: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(sql, [cutoff.toISOString(), BATCH]);
    total += rowCount;
    if (rowCount < BATCH) return total;
  }
}

/** Deletes what the policy says has expired as of `now`. */
export async function pruneExpired(db: Database, policy: RetentionPolicy, now: number): Promise<PruneResult> {
  const events =
    policy.eventsMs > 0
      ? await deleteInBatches(
          db,
          `DELETE FROM events WHERE event_id IN (
             SELECT event_id FROM events WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)`,
          new Date(now - policy.eventsMs),
        )
      : 0;
  const inbox =
    policy.inboxMs > 0
      ? await deleteInBatches(
          db,
          `DELETE FROM inbox WHERE (consumer, event_id) IN (
             SELECT consumer, event_id FROM inbox WHERE processed_at < $1 LIMIT $2)`,
          new Date(now - policy.inboxMs),
        )
      : 0;
  return { events, inbox };
}

export type RetentionJob = PeriodicJob;

/** Prunes every `intervalMs` in the background. Several replicas may run it: deletes are idempotent. */
export function createRetentionJob(options: {
  readonly db: Database;
  readonly policy: RetentionPolicy;
  readonly intervalMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
}): RetentionJob {
  return createPeriodicJob({
    intervalMs: options.intervalMs,
    run: () =>
      pruneExpired(options.db, options.policy, Date.now()).then(
        (pruned) => {
          if (pruned.events + pruned.inbox > 0) options.logger.info(pruned, 'pruned expired events and inbox rows');
        },
        (error: unknown) => options.logger.warn({ err: error }, 'pruning expired events failed; will retry'),
      ),
  });
}
