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
  close(): Promise<void>;
}
