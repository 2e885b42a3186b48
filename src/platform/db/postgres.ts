import { Pool, TypeOverrides, types, type PoolClient, type QueryConfig } from 'pg';
import type { Logger } from '../logger.ts';
import type { Database, PoolStats, QueryResult, Transaction } from './port.ts';
import { DatabaseError, SQLSTATE, toDatabaseError } from './errors.ts';
import { createTransactionGuard } from './tx-guard.ts';
import { OID, keepText, parseInt8 } from './values.ts';
import { createPostgresListener } from './postgres-listener.ts';
import { NOTIFY_SQL, assertChannel } from './wake-ups.ts';

export interface PostgresDatabaseOptions {
  /** `postgres://user:password@host:port/database` */
  readonly url: string;
  /** Connections in the pool. Default 10. */
  readonly poolMax?: number;
  /** How long to wait for a connection before failing. Default 10 000. */
  readonly connectionTimeoutMs?: number;
  /** Where a connection the server dropped while idle, and a failing wake-up handler, are reported. */
  readonly logger?: Pick<Logger, 'warn'>;
  /** First and longest wait before reopening the listening connection after it dropped. Default 100 and 5 000. */
  readonly listenReconnectMs?: { readonly min: number; readonly max: number };
}

// text[]: pg's typings list only scalar oids.
const TEXT_ARRAY_OID = 1009 as Parameters<typeof types.getTypeParser>[0];

type Nested<T> = T | null | Nested<T>[];

const mapNested = <T>(value: Nested<string>, parseElement: (text: string) => T): Nested<T> =>
  value === null ? null : Array.isArray(value) ? value.map((item) => mapNested(item, parseElement)) : parseElement(value);

/** Reads an array literal with pg's text[] parser, then parses each element like the scalar type. */
const parseArray = <T>(parseElement: (text: string) => T) => {
  const parseTextArray = types.getTypeParser(TEXT_ARRAY_OID, 'text') as (text: string) => Nested<string>;
  return (text: string): Nested<T> => mapNested(parseTextArray(text), parseElement);
};

/** Per-pool parsers, so nothing global in `pg` is changed for other users in the process. */
function createTypeParsers(): TypeOverrides {
  const overrides = new TypeOverrides(types);
  overrides.setTypeParser(OID.int8, parseInt8);
  overrides.setTypeParser(OID.int8Array, parseArray(parseInt8));
  overrides.setTypeParser(OID.date, keepText);
  overrides.setTypeParser(OID.dateArray, parseArray(keepText));
  overrides.setTypeParser(OID.interval, keepText);
  overrides.setTypeParser(OID.intervalArray, parseArray(keepText));
  return overrides;
}

type Runner = Pool | PoolClient;

// The extended protocol always, as PGlite does: one statement per query on both adapters.
async function runQuery<Row>(runner: Runner, sql: string, params: readonly unknown[]): Promise<QueryResult<Row>> {
  const config: QueryConfig & { queryMode: 'extended' } = { text: sql, values: [...params], queryMode: 'extended' };
  try {
    const result = await runner.query(config);
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  } catch (error) {
    throw toDatabaseError(error);
  }
}

async function runNotify(runner: Runner, channel: string, payload: string): Promise<void> {
  assertChannel(channel);
  await runQuery(runner, NOTIFY_SQL, [channel, payload]);
}

async function runScript(runner: Runner, sql: string): Promise<void> {
  try {
    await runner.query(sql);
  } catch (error) {
    throw toDatabaseError(error);
  }
}

/**
 * COMMIT of a transaction in which a statement failed answers ROLLBACK instead of an error; report it
 * as PGlite does, or the caller would believe work that was thrown away had been saved.
 */
async function commit(client: PoolClient): Promise<void> {
  let command: string;
  try {
    command = (await client.query('COMMIT')).command;
  } catch (error) {
    throw toDatabaseError(error);
  }
  if (command === 'ROLLBACK') {
    const cause = new Error('COMMIT answered ROLLBACK');
    throw new DatabaseError('Transaction was rolled back instead of committed', { code: SQLSTATE.inFailedTransaction }, cause);
  }
}

/**
 * PostgreSQL through a `pg` pool. A transaction holds one pooled connection from BEGIN to COMMIT or
 * ROLLBACK; a connection whose rollback failed is discarded rather than returned to the pool.
 * Connections are opened lazily: creating the database does not prove the server is reachable, `ping()` does.
 */
export async function createPostgresDatabase(options: PostgresDatabaseOptions): Promise<Database> {
  const pool = new Pool({
    connectionString: options.url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    types: createTypeParsers(),
  });
  // Without a listener an idle connection the server drops would crash the process.
  pool.on('error', (error) => options.logger?.warn({ err: error }, 'postgres connection failed while idle'));
  const guard = createTransactionGuard();
  const listener = createPostgresListener({
    url: options.url,
    connectionTimeoutMs: options.connectionTimeoutMs ?? 10_000,
    reconnectMinMs: options.listenReconnectMs?.min,
    reconnectMaxMs: options.listenReconnectMs?.max,
    logger: options.logger,
  });
  let closed: Promise<void> | undefined;

  const database: Database = {
    kind: 'postgres',
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      guard.assertOutside('query');
      return runQuery<Row>(pool, sql, params);
    },
    async exec(sql) {
      guard.assertOutside('exec');
      await runScript(pool, sql);
    },
    async transaction(work) {
      guard.assertOutside('transaction');
      let client: PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw toDatabaseError(error);
      }
      // A connection dropped while checked out is also emitted as an 'error' event, which would
      // crash the process with no listener; the statement in flight (or the next) fails with it.
      const onConnectionError = (error: Error): void => options.logger?.warn({ err: error }, 'postgres connection failed in a transaction');
      client.on('error', onConnectionError);
      let finished = false;
      const open = (): void => {
        if (finished) throw new Error('the transaction has already finished; its tx can no longer be used');
      };
      const tx: Transaction = {
        query: async <Row>(sql: string, params: readonly unknown[] = []) => {
          open();
          return runQuery<Row>(client, sql, params);
        },
        exec: async (sql) => {
          open();
          return runScript(client, sql);
        },
        notify: async (channel, payload = '') => {
          open();
          return runNotify(client, channel, payload);
        },
      };
      let discard: Error | undefined;
      try {
        await runScript(client, 'BEGIN');
        const result = await guard.runInside(() => work(tx));
        await commit(client);
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          discard = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
        throw error;
      } finally {
        finished = true;
        client.off('error', onConnectionError);
        client.release(discard);
      }
    },
    async ping() {
      const started = performance.now();
      await database.query('SELECT 1');
      return performance.now() - started;
    },
    poolStats(): PoolStats {
      return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    },
    listen(channel, handler) {
      if (closed !== undefined) return Promise.reject(new Error('the database is closed'));
      return listener.listen(channel, handler);
    },
    async notify(channel, payload = '') {
      guard.assertOutside('notify');
      await runNotify(pool, channel, payload);
    },
    close() {
      closed ??= Promise.all([listener.close(), pool.end()]).then(() => undefined);
      return closed;
    },
  };
  return database;
}
