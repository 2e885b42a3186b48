/**
 * The database port. PGlite (embedded) and PostgreSQL implement it with the same SQL and the
 * same migrations; both pass `test/conformance/db.suite.ts`.
 */

export interface QueryResult<Row> {
  readonly rows: Row[];
  readonly rowCount: number;
}

/** Anything that runs parameterised SQL (`$1, $2, …`): the database itself or an open transaction. */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
}

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws (the error is rethrown). */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Round trip in milliseconds; throws when the database is unreachable. */
  ping(): Promise<number>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}
