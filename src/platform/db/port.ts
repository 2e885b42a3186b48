import type { Listening, WakeUpHandler } from './wake-ups.ts';

export type { Listening, WakeUp, WakeUpHandler } from './wake-ups.ts';

/**
 * The database port. PGlite (embedded) and PostgreSQL implement it with the same SQL and the
 * same migrations; both pass `test/conformance/db.suite.ts`.
 */

export interface QueryResult<Row> {
  readonly rows: Row[];
  readonly rowCount: number;
}

/**
 * Anything that runs parameterised SQL (`$1, $2, …`), one statement per call: the database itself
 * or an open transaction. Both adapters return the same JavaScript values: int8 (`count(*)`, bigserial)
 * as a number, or a bigint beyond ±2^53; numeric and interval as strings; date as `'YYYY-MM-DD'`;
 * timestamptz as a Date; json/jsonb parsed; arrays as arrays; bytea as a Uint8Array. Pass a jsonb
 * parameter as `JSON.stringify(value)`: a bare JavaScript array would be sent as a Postgres array.
 * Failures the server reports are `DatabaseError`s carrying the SQLSTATE `code` (`./errors.ts`).
 */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
}

/**
 * The `tx` a transaction hands to its work. Use only `tx` inside the work: the database itself
 * refuses to be used there (on PGlite, which has one connection, it would wait forever).
 */
export interface Transaction extends Queryable {
  /** Runs a script of one or more statements without parameters (migrations, DDL). */
  exec(sql: string): Promise<void>;
  /**
   * Notifies `channel` when this transaction commits; a rollback sends nothing (PostgreSQL's NOTIFY).
   * Identical notifications of one transaction are delivered once. Throws `InvalidChannelError`
   * for a channel that is not `[a-z_][a-z0-9_]*`.
   */
  notify(channel: string, payload?: string): Promise<void>;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs a script of one or more statements without parameters, outside any transaction. */
  exec(sql: string): Promise<void>;
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws (the error is rethrown).
   * Read committed on PostgreSQL; on PGlite transactions run one at a time.
   */
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Round trip in milliseconds; throws when the database is unreachable. */
  ping(): Promise<number>;
  poolStats(): PoolStats;
  /**
   * Calls `handler` after notifications on `channel` from any handle on this database (another
   * replica's included), coalesced: a burst of commits costs one run, and runs never overlap.
   * Resolves once notifications are being received; rejects when they cannot be (the database is
   * unreachable) and nothing stays registered. On PostgreSQL one dedicated connection per handle
   * listens for every handler; when it drops it is reopened with backoff and every handler then runs
   * once with `missed: true`, since notifications sent meanwhile are lost. Delivery is a hint, not a
   * queue: a handler re-reads the state it cares about.
   */
  listen(channel: string, handler: WakeUpHandler): Promise<Listening>;
  /** Notifies `channel` now (outside any transaction). Same rules as {@link Transaction.notify}. */
  notify(channel: string, payload?: string): Promise<void>;
  /** Closes the pool and the listening connection; handlers are not called afterwards. */
  close(): Promise<void>;
}
