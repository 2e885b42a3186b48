import type { Queryable } from '../db/port.ts';
import { newEventId } from './event-id.ts';
import { DEFAULT_EVENT_VERSION, type NewSystemEvent, type SystemEvent } from './types.ts';

/**
 * The channel `appendEvents` notifies when its transaction commits, so a relay in any replica
 * (`./relay.ts` listens on it) publishes at once instead of at its next poll.
 */
export const OUTBOX_CHANNEL = 'blocks_outbox';

// A bus subject: dot-separated tokens, no wildcards or spaces (see src/platform/bus/port.ts).
const EVENT_TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** An event that cannot be stored as given; raised before anything is written. */
export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

function toTimestamp(value: string | Date | undefined): string {
  if (value === undefined) return new Date().toISOString();
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidEventError(`timestamp ${String(value)} is not a date`);
  return date.toISOString();
}

// These travel as bus headers or keys, which brokers limit; a bad one would never publish.
const MAX_HEADER_LENGTH = 256;
function assertHeaderSafe(field: string, value: string | undefined): void {
  if (value === undefined) return;
  if (value.length === 0 || value.length > MAX_HEADER_LENGTH || /[\r\n\0]/.test(value)) {
    throw new InvalidEventError(`${field} must be 1-${MAX_HEADER_LENGTH} characters without line breaks`);
  }
}

/** Fills the defaults and checks the fields; throws `InvalidEventError`. */
export function buildEvent<Payload extends object>(input: NewSystemEvent<Payload>): SystemEvent<Payload> {
  if (!EVENT_TYPE.test(input.event_type)) {
    throw new InvalidEventError(`event_type '${input.event_type}' must be dot-separated tokens of [A-Za-z0-9_-]`);
  }
  if (input.source_service === '') throw new InvalidEventError('source_service must not be empty');
  if (typeof input.payload !== 'object' || input.payload === null || Array.isArray(input.payload)) {
    throw new InvalidEventError('payload must be a JSON object');
  }
  const eventId = input.event_id ?? newEventId();
  assertHeaderSafe('correlation_id', input.correlation_id);
  assertHeaderSafe('key', input.key);
  assertHeaderSafe('traceparent', input.traceparent);
  return {
    event_id: eventId,
    event_type: input.event_type,
    source_service: input.source_service,
    target_services: [...(input.target_services ?? [])],
    payload: input.payload,
    timestamp: toTimestamp(input.timestamp),
    correlation_id: input.correlation_id ?? eventId,
    version: input.version ?? DEFAULT_EVENT_VERSION,
  };
}

/**
 * Writes an event to the outbox through `tx`, so it commits or rolls back with the change it
 * describes; the relay publishes it after the commit. The same statement notifies
 * {@link OUTBOX_CHANNEL}, which PostgreSQL delivers on commit (and never on rollback) to every
 * replica's relay; calling `relay.notify()` after the commit still saves this process' relay the
 * notification's round trip.
 * Returns the event with its defaults filled in: what consumers will receive once JSON has carried it.
 * Throws `InvalidEventError` for a bad event and a unique-violation `DatabaseError` when `event_id`
 * was already used.
 */
export async function appendEvent<Payload extends object>(tx: Queryable, input: NewSystemEvent<Payload>): Promise<SystemEvent<Payload>> {
  return (await appendEvents(tx, [input]))[0] as SystemEvent<Payload>;
}

export interface AppendOptions {
  /**
   * An event whose `event_id` is already stored is skipped instead of failing the statement: for a
   * writer that retries after losing its connection, when it cannot know whether its commit landed.
   */
  readonly skipExisting?: boolean | undefined;
}

/**
 * Writes several events in one statement (all or none), in the order given: the relay publishes
 * them in that order. Same contract as {@link appendEvent}; every event is checked before anything
 * is written.
 */
export async function appendEvents<Payload extends object>(
  tx: Queryable,
  inputs: readonly NewSystemEvent<Payload>[],
  options: AppendOptions = {},
): Promise<SystemEvent<Payload>[]> {
  const events = inputs.map((input) => buildEvent(input));
  if (events.length === 0) return events;
  const rows = events.map((event, i) => ({
    ...event,
    ordering_key: inputs[i]?.key ?? event.correlation_id,
    traceparent: inputs[i]?.traceparent ?? null,
    n: i,
  }));
  // One JSON parameter instead of ten per row: PGlite and PostgreSQL both pay per statement far more than per row.
  // The wake-up rides in the same statement, sent only when a row was written: no extra round trip.
  // Its cost is PostgreSQL's: a committing transaction that notified holds a global lock for its commit,
  // so notifying transactions commit one at a time (20 concurrent one-row writers: ~9,500 -> ~3,800
  // commits/s on this machine); the hot writers group their appends (call events), so few contend.
  await tx.query(
    `WITH inserted AS (
       INSERT INTO events (event_id, event_type, source_service, target_services, payload, "timestamp",
                           correlation_id, version, ordering_key, traceparent)
       SELECT event_id, event_type, source_service, target_services, payload, "timestamp",
              correlation_id, version, ordering_key, traceparent
       FROM jsonb_to_recordset($1::jsonb) AS r(event_id uuid, event_type text, source_service text,
            target_services text[], payload jsonb, "timestamp" timestamptz, correlation_id text, version text,
            ordering_key text, traceparent text, n integer)
       ORDER BY n${options.skipExisting === true ? '\n       ON CONFLICT (event_id) DO NOTHING' : ''}
       RETURNING 1
     )
     SELECT pg_notify($2, '') FROM (SELECT 1 FROM inserted LIMIT 1) AS written`,
    [JSON.stringify(rows), OUTBOX_CHANNEL],
  );
  return events;
}
