import type { Database } from '../db/port.ts';
import type { PreparedMessage } from './message.ts';

/**
 * Where the in-process bus keeps its durable consumers' messages on the embedded default
 * (tables of src/platform/migrations/0010_bus_messages.sql): one message row, one pending row per durable
 * consumer it is for, deleted when that consumer acks it.
 */
export interface MemoryBusStore {
  /** Durable consumers already created, with how many messages each has not acked, and the highest sequence used. */
  open(): Promise<{ consumers: StoredConsumer[]; lastSeq: number }>;
  /** Records a durable consumer (a second call for the same name changes nothing). */
  addConsumer(consumer: string, subject: string): Promise<void>;
  /** Stores messages (distinct ids), each for its consumers, in order, all or none; returns each id's sequence. */
  insert(
    messages: ReadonlyArray<{ readonly message: PreparedMessage; readonly storedFor: readonly string[] }>,
  ): Promise<Map<string, number>>;
  /** Up to `limit` messages `consumer` has not acked with a sequence above `afterSeq`, in order. */
  load(consumer: string, afterSeq: number, limit: number): Promise<LoadedMessage[]>;
  /** Counts one more delivery of the pending rows (consumer i, sequence i). */
  delivered(consumers: readonly string[], seqs: readonly number[]): Promise<void>;
  /** Forgets the pending rows (consumer i, sequence i). */
  ack(consumers: readonly string[], seqs: readonly number[]): Promise<void>;
  /**
   * Deletes messages every consumer has acked and, when `maxAgeMs` > 0, messages stored longer ago
   * than that with their pending rows (a consumer that never came back keeps nothing for ever).
   * Returns how many pending messages each consumer lost that way.
   */
  prune(maxAgeMs: number): Promise<Map<string, number>>;
}

export interface StoredConsumer {
  readonly consumer: string;
  readonly subject: string;
  readonly pending: number;
}

export interface LoadedMessage extends PreparedMessage {
  readonly seq: number;
  readonly publishedAt: number;
  /** Times it was handed to this consumer before (counted across restarts). */
  readonly deliveries: number;
}

interface MessageRow {
  seq: number | string;
  message_id: string;
  subject: string;
  message_key: string | null;
  headers: Record<string, string>;
  payload: string;
  created_at: Date | string;
  deliveries: number;
}

export function createDatabaseBusStore(db: Database): MemoryBusStore {
  return {
    async open() {
      const { rows } = await db.query<{ consumer: string; subject: string; pending: number | string }>(
        `SELECT c.consumer, c.subject, (SELECT count(*) FROM bus_pending p WHERE p.consumer = c.consumer) AS pending
         FROM bus_consumers c`,
      );
      const last = await db.query<{ seq: number | string | null }>('SELECT max(seq) AS seq FROM bus_messages');
      return {
        consumers: rows.map((row) => ({ consumer: row.consumer, subject: row.subject, pending: Number(row.pending) })),
        lastSeq: Number(last.rows[0]?.seq ?? 0),
      };
    },
    async addConsumer(consumer, subject) {
      await db.query('INSERT INTO bus_consumers (consumer, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING', [consumer, subject]);
    },
    async insert(messages) {
      // One statement: the messages and their pending rows exist together or not at all. Consumer
      // names are [A-Za-z0-9_-], so a comma joins a message's list.
      const { rows } = await db.query<{ seq: number | string; message_id: string }>(
        `WITH input AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[])
             WITH ORDINALITY AS t(message_id, subject, message_key, headers, payload, consumers, ord)
         ), m AS (
           INSERT INTO bus_messages (message_id, subject, message_key, headers, payload)
           SELECT message_id, subject, message_key, headers, payload FROM input ORDER BY ord
           RETURNING seq, message_id
         ), p AS (
           INSERT INTO bus_pending (consumer, seq)
           SELECT c, m.seq FROM m JOIN input ON input.message_id = m.message_id, unnest(string_to_array(input.consumers, ',')) AS c
         )
         SELECT seq, message_id FROM m`,
        [
          messages.map(({ message }) => message.id),
          messages.map(({ message }) => message.subject),
          messages.map(({ message }) => message.key ?? null),
          messages.map(({ message }) => JSON.stringify(message.headers)),
          messages.map(({ message }) => message.payload),
          messages.map(({ storedFor }) => storedFor.join(',')),
        ],
      );
      return new Map(rows.map((row) => [row.message_id, Number(row.seq)]));
    },
    async load(consumer, afterSeq, limit) {
      const { rows } = await db.query<MessageRow>(
        `SELECT m.seq, m.message_id, m.subject, m.message_key, m.headers, m.payload, m.created_at, p.deliveries
         FROM bus_pending p JOIN bus_messages m ON m.seq = p.seq
         WHERE p.consumer = $1 AND p.seq > $2
         ORDER BY p.seq
         LIMIT $3`,
        [consumer, afterSeq, limit],
      );
      return rows.map((row) => ({
        seq: Number(row.seq),
        id: row.message_id,
        subject: row.subject,
        key: row.message_key ?? undefined,
        headers: row.headers,
        payload: row.payload,
        publishedAt: new Date(row.created_at).getTime(),
        deliveries: row.deliveries,
      }));
    },
    async delivered(consumers, seqs) {
      if (seqs.length === 0) return;
      await db.query(
        `UPDATE bus_pending p SET deliveries = p.deliveries + 1 FROM unnest($1::text[], $2::bigint[]) AS d(consumer, seq)
         WHERE p.consumer = d.consumer AND p.seq = d.seq`,
        [consumers, seqs],
      );
    },
    async ack(consumers, seqs) {
      if (seqs.length === 0) return;
      await db.query(
        `DELETE FROM bus_pending p USING unnest($1::text[], $2::bigint[]) AS a(consumer, seq)
         WHERE p.consumer = a.consumer AND p.seq = a.seq`,
        [consumers, seqs],
      );
    },
    async prune(maxAgeMs) {
      const expired = new Map<string, number>();
      if (maxAgeMs > 0) {
        const { rows } = await db.query<{ consumer: string; n: number | string }>(
          `WITH old AS (
             DELETE FROM bus_messages WHERE created_at < now() - $1::double precision * interval '1 millisecond'
             RETURNING seq
           ), gone AS (
             DELETE FROM bus_pending p USING old WHERE p.seq = old.seq RETURNING p.consumer
           )
           SELECT consumer, count(*) AS n FROM gone GROUP BY consumer`,
          [maxAgeMs],
        );
        for (const row of rows) expired.set(row.consumer, Number(row.n));
      }
      await db.query(
        `DELETE FROM bus_messages
         WHERE seq < coalesce((SELECT min(seq) FROM bus_pending), (SELECT max(seq) + 1 FROM bus_messages))`,
      );
      return expired;
    },
  };
}
