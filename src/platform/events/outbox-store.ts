import type { Database, Queryable } from '../db/port.ts';
import type { SystemEvent } from './types.ts';

/** A pending outbox row the relay has leased. */
export interface ClaimedEvent {
  readonly event: SystemEvent;
  readonly sequence: number | bigint;
  readonly key: string;
  readonly traceparent: string | null;
}

interface ClaimedRow {
  event_id: string;
  event_type: string;
  source_service: string;
  target_services: string[];
  payload: Record<string, unknown>;
  timestamp: Date;
  correlation_id: string;
  version: string;
  sequence: number | bigint;
  ordering_key: string;
  traceparent: string | null;
}

const toClaimed = (row: ClaimedRow): ClaimedEvent => ({
  event: {
    event_id: row.event_id,
    event_type: row.event_type,
    source_service: row.source_service,
    target_services: row.target_services,
    payload: row.payload,
    timestamp: row.timestamp.toISOString(),
    correlation_id: row.correlation_id,
    version: row.version,
  },
  sequence: row.sequence,
  key: row.ordering_key,
  traceparent: row.traceparent,
});

/**
 * Leases up to `limit` of the oldest pending rows nobody holds to `token` for `leaseMs`, in sequence
 * order. SKIP LOCKED lets relays claiming at the same moment take disjoint rows instead of waiting;
 * the lease (not a row lock) keeps them apart while publishing, so no transaction stays open meanwhile.
 */
export async function claimPending(db: Database, token: string, limit: number, leaseMs: number): Promise<ClaimedEvent[]> {
  const { rows } = await db.query<ClaimedRow>(
    `WITH next AS (
       SELECT event_id FROM events
       WHERE published_at IS NULL AND (locked_until IS NULL OR locked_until < now())
       ORDER BY sequence
       LIMIT $3
       FOR UPDATE SKIP LOCKED
     )
     UPDATE events SET locked_by = $1, locked_until = now() + $2::double precision * interval '1 millisecond'
     FROM next WHERE events.event_id = next.event_id
     RETURNING events.event_id, events.event_type, events.source_service, events.target_services, events.payload,
               events."timestamp", events.correlation_id, events.version, events.sequence, events.ordering_key,
               events.traceparent`,
    [token, leaseMs, limit],
  );
  return rows.map(toClaimed).sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0));
}

/**
 * The oldest pending rows, without reserving them: for a relay that is alone on its database
 * (PGlite, which one process owns), where a lease would only cost an UPDATE per row.
 */
export async function selectPending(db: Database, limit: number): Promise<ClaimedEvent[]> {
  const { rows } = await db.query<ClaimedRow>(
    `SELECT event_id, event_type, source_service, target_services, payload, "timestamp", correlation_id, version,
            sequence, ordering_key, traceparent
     FROM events WHERE published_at IS NULL
     ORDER BY sequence
     LIMIT $1`,
    [limit],
  );
  return rows.map(toClaimed);
}

/**
 * Keys among `claimed` that have an earlier pending row this claim does not hold (another relay has
 * it, or it committed late): publishing ours first would break the key's order, so they wait.
 */
export async function keysWaitingForEarlierEvents(db: Database, token: string, claimed: readonly ClaimedEvent[]): Promise<Set<string>> {
  const last = claimed.at(-1);
  if (last === undefined) return new Set();
  const { rows } = await db.query<{ key: string }>(
    `SELECT DISTINCT ordering_key AS key FROM events
     WHERE published_at IS NULL AND ordering_key = ANY($1::text[]) AND sequence < $2::bigint
       AND locked_by IS DISTINCT FROM $3`,
    [[...new Set(claimed.map((c) => c.key))], last.sequence, token],
  );
  return new Set(rows.map((row) => row.key));
}

/** Marks events published. Rows already marked (a lease ran out and another relay got there) stay as they are. */
export async function markPublished(db: Database, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await db.query(
    `UPDATE events SET published_at = now(), locked_by = NULL, locked_until = NULL
     WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL`,
    [eventIds],
  );
}

/**
 * Records a failed publish and gives the row back, so the next pass retries it. `token` is null for an
 * unleased row. `rejected` says the bus was answering and refused this message: only such failures
 * count towards dead-lettering, so an outage never moves anything aside. Returns the row's rejections
 * so far (0 when the row is no longer this claim's).
 */
export async function recordFailure(
  db: Database,
  token: string | null,
  eventId: string,
  error: string,
  rejected: boolean,
): Promise<number> {
  const { rows } = await db.query<{ rejections: number }>(
    `UPDATE events SET attempts = attempts + 1, rejections = rejections + $4::integer, last_error = $3,
                       locked_by = NULL, locked_until = NULL
     WHERE event_id = $1 AND locked_by IS NOT DISTINCT FROM $2 AND published_at IS NULL
     RETURNING rejections`,
    [eventId, token, error, rejected ? 1 : 0],
  );
  return rows[0]?.rejections ?? 0;
}

/** What {@link moveToDeadLetters} moved. */
export interface DeadLetteredEvent {
  readonly event_id: string;
  readonly event_type: string;
  readonly correlation_id: string;
  readonly ordering_key: string;
  readonly attempts: number;
  readonly rejections: number;
  readonly last_error: string | null;
}

/**
 * Moves a pending event from the outbox to `outbox_dead_letters` through `tx`, so the later events
 * of its key go out. Returns what was moved, or undefined when it was published or moved meanwhile.
 */
export async function moveToDeadLetters(tx: Queryable, eventId: string): Promise<DeadLetteredEvent | undefined> {
  const { rows } = await tx.query<DeadLetteredEvent>(
    `WITH dead AS (
       DELETE FROM events WHERE event_id = $1 AND published_at IS NULL
       RETURNING event_id, event_type, source_service, target_services, payload, "timestamp", correlation_id, version,
                 ordering_key, traceparent, attempts, rejections, last_error, created_at
     )
     INSERT INTO outbox_dead_letters (event_id, event_type, source_service, target_services, payload, "timestamp",
                                      correlation_id, version, ordering_key, traceparent, attempts, rejections,
                                      last_error, created_at)
     SELECT * FROM dead
     RETURNING event_id, event_type, correlation_id, ordering_key, attempts, rejections, last_error`,
    [eventId],
  );
  return rows[0];
}

/** Gives back rows this claim did not publish. */
export async function release(db: Database, token: string, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await db.query(`UPDATE events SET locked_by = NULL, locked_until = NULL WHERE event_id = ANY($1::uuid[]) AND locked_by = $2`, [
    eventIds,
    token,
  ]);
}

/** Rows committed and not yet published. */
export async function countPending(db: Database): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM events WHERE published_at IS NULL');
  return Number(rows[0]?.n ?? 0);
}
