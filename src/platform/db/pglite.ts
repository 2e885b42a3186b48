import { mkdir } from 'node:fs/promises';
import { PGlite, type Results } from '@electric-sql/pglite';
import type { Database, PoolStats, QueryResult, Transaction } from './port.ts';
import { toDatabaseError } from './errors.ts';
import { createTransactionGuard } from './tx-guard.ts';
import { OID, keepText } from './values.ts';
import { lockDataDir, type DataDirLock } from './pglite-lock.ts';

export interface PgliteDatabaseOptions {
  /** Directory holding the data (created when missing); `'memory://'` or absent keeps it in memory. */
  readonly dataDir?: string;
}

const isInMemory = (dataDir: string | undefined): boolean => dataDir === undefined || dataDir.startsWith('memory://');

// PGlite reports 0 affected rows for a SELECT; pg's rowCount is then the number of rows returned.
const toResult = <Row>(result: Results<Row>): QueryResult<Row> => {
  const affected = result.affectedRows ?? 0;
  return { rows: result.rows, rowCount: affected > 0 ? affected : result.rows.length };
};

const mapped = async <T>(run: () => Promise<T>): Promise<T> => {
  try {
    return await run();
  } catch (error) {
    throw toDatabaseError(error);
  }
};

/**
 * The embedded database: PostgreSQL compiled to WASM, in this process, one connection. Every query and
 * transaction runs one at a time (PGlite's own lock), so a transaction never interleaves with another
 * caller's statements and concurrent readers see only committed data. Only one process may open a data
 * directory at a time: opening one that a live process holds throws `data directory <dir> is in use by
 * process <pid>` (`./pglite-lock.ts`); a lock left by a crashed process is taken over.
 */
export async function createPgliteDatabase(options: PgliteDatabaseOptions = {}): Promise<Database> {
  const { dataDir } = options;
  let lock: DataDirLock | undefined;
  if (!isInMemory(dataDir) && dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true });
    lock = await lockDataDir(dataDir);
  }
  let lite: PGlite;
  try {
    lite = await PGlite.create(isInMemory(dataDir) ? undefined : dataDir, {
      // PGlite derives the array parsers (date[], interval[]) from these element parsers.
      parsers: { [OID.date]: keepText, [OID.interval]: keepText },
      // On Node the data directory is NODEFS: every write reaches the file during the query and
      // PGlite's syncToFs is a no-op, so "relaxed" only skips awaiting that no-op behind a mutex,
      // which costs about half of a small statement's time. Durability is the same either way.
      relaxedDurability: true,
    });
  } catch (error) {
    await lock?.release();
    throw error;
  }

  const guard = createTransactionGuard();
  let inFlight = 0;
  let closed: Promise<void> | undefined;

  const counted = async <T>(run: () => Promise<T>): Promise<T> => {
    inFlight += 1;
    try {
      return await mapped(run);
    } finally {
      inFlight -= 1;
    }
  };

  const database: Database = {
    kind: 'pglite',
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      guard.assertOutside('query');
      return counted(async () => toResult(await lite.query<Row>(sql, [...params])));
    },
    async exec(sql) {
      guard.assertOutside('exec');
      await counted(() => lite.exec(sql));
    },
    async transaction(work) {
      guard.assertOutside('transaction');
      return counted(() =>
        lite.transaction((liteTx) => {
          const tx: Transaction = {
            query: async <Row>(sql: string, params: readonly unknown[] = []) =>
              toResult(await mapped(() => liteTx.query<Row>(sql, [...params]))),
            exec: async (sql) => {
              await mapped(() => liteTx.exec(sql));
            },
          };
          return guard.runInside(() => work(tx));
        }),
      );
    },
    async ping() {
      const started = performance.now();
      await database.query('SELECT 1');
      return performance.now() - started;
    },
    poolStats(): PoolStats {
      return { total: 1, idle: inFlight === 0 ? 1 : 0, waiting: Math.max(0, inFlight - 1) };
    },
    close() {
      closed ??= (async () => {
        try {
          await lite.close();
        } finally {
          await lock?.release();
        }
      })();
      return closed;
    },
  };
  return database;
}
