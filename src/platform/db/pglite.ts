import { mkdir } from 'node:fs/promises';
import type { Database, PoolStats, QueryResult, Transaction } from './port.ts';
import { createTransactionGuard } from './tx-guard.ts';
import { lockDataDir, type DataDirLock } from './pglite-lock.ts';
import { startPgliteWorker, type PgliteWorker } from './pglite-worker-client.ts';
import type { Operation, WireResult } from './pglite-worker-protocol.ts';
import type { Logger } from '../logger.ts';
import { NOTIFY_SQL, assertChannel, createWakeUpHub, reportWakeUpError } from './wake-ups.ts';

export interface PgliteDatabaseOptions {
  /** Directory holding the data (created when missing); `'memory://'` or absent keeps it in memory. */
  readonly dataDir?: string;
  /** Where a failing wake-up handler is reported. */
  readonly logger?: Pick<Logger, 'warn'> | undefined;
}

const isInMemory = (dataDir: string | undefined): dataDir is undefined => dataDir === undefined || dataDir.startsWith('memory://');

const asResult = <Row>(wire: WireResult | undefined): QueryResult<Row> => {
  if (wire === undefined) throw new Error('PGlite worker answered a query without rows');
  return { rows: wire.rows as Row[], rowCount: wire.rowCount };
};

/**
 * Whose turn it is on the one connection. Outside a transaction an operation is posted to the worker
 * at once: the worker queues it, so it never idles waiting for this (busy) thread to send the next one.
 * A transaction holds the connection from BEGIN until its COMMIT or ROLLBACK is posted; operations
 * arriving meanwhile wait here and are posted in arrival order right after it.
 */
interface Turns {
  readonly free: boolean;
  /** Runs `start` now if the connection is free, otherwise once every earlier turn has started. */
  take(start: () => void): void;
  /** Resolves when this caller holds the connection; nothing else is posted until `release`. */
  hold(): Promise<void>;
  release(): void;
}

function createTurns(): Turns {
  const waiting: Array<() => void> = [];
  let held = false;
  const turns: Turns = {
    get free() {
      return !held && waiting.length === 0;
    },
    take(start) {
      if (turns.free) start();
      else waiting.push(start);
    },
    hold() {
      return new Promise((resolve) =>
        turns.take(() => {
          held = true;
          resolve();
        }),
      );
    },
    release() {
      held = false;
      for (let start = waiting.shift(); start !== undefined; start = held ? undefined : waiting.shift()) start();
    },
  };
  return turns;
}

/**
 * The embedded database: PostgreSQL compiled to WASM, one connection, run on a worker thread of this
 * process (`./pglite-worker.ts`) so statements do not block the event loop. Operations run one at a
 * time in call order, and a transaction never interleaves with another caller's statements: callers
 * arriving while one is open wait for it, so concurrent readers see only committed data. Values and
 * errors are those of the PostgreSQL adapter (`DatabaseError` with the SQLSTATE `code`). Should the
 * worker thread die, every waiting and later call rejects with `PGlite worker thread died: …`.
 * Only one process may open a data directory at a time: opening one that a live process holds throws
 * `data directory <dir> is in use by process <pid>` (`./pglite-lock.ts`); a lock left by a crashed
 * process is taken over.
 */
export async function createPgliteDatabase(options: PgliteDatabaseOptions = {}): Promise<Database> {
  const dataDir = isInMemory(options.dataDir) ? undefined : options.dataDir;
  let lock: DataDirLock | undefined;
  if (dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true });
    lock = await lockDataDir(dataDir);
  }
  // Notifications are PGlite's own (LISTEN/NOTIFY of its one connection, delivered after COMMIT),
  // carried from the worker thread; the hub is created below, once the worker can run LISTEN.
  let deliver = (_channel: string, _payload: string): void => undefined;
  let worker: PgliteWorker;
  try {
    worker = await startPgliteWorker({ dataDir }, (channel, payload) => deliver(channel, payload));
  } catch (error) {
    await lock?.release();
    throw error;
  }

  const guard = createTransactionGuard();
  const turns = createTurns();
  let inFlight = 0;
  let transactions = 0;
  let closed: Promise<void> | undefined;

  const counted = async <T>(run: () => Promise<T>): Promise<T> => {
    if (closed !== undefined) throw new Error('the PGlite database is closed');
    inFlight += 1;
    try {
      return await run();
    } finally {
      inFlight -= 1;
    }
  };

  const submit = (operation: Exclude<Operation, { op: 'begin' }>): Promise<WireResult | undefined> =>
    turns.free
      ? worker.call(operation)
      : new Promise((resolve, reject) => {
          turns.take(() => {
            worker.call(operation).then(resolve, reject);
          });
        });

  const runTransaction = async <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => {
    await turns.hold();
    const id = (transactions += 1);
    worker.begin(id);
    let finished = false;
    const step = (operation: Extract<Operation, { op: 'query' | 'exec' }>): Promise<WireResult | undefined> => {
      if (finished) return Promise.reject(new Error('the transaction has already finished; its tx can no longer be used'));
      return worker.call(operation);
    };
    const end = (op: 'commit' | 'rollback'): Promise<unknown> => {
      finished = true;
      const ended = worker.call({ op, tx: id });
      // Whatever waited is posted now: the worker runs it after this COMMIT or ROLLBACK.
      turns.release();
      return ended;
    };
    const tx: Transaction = {
      query: async <Row>(sql: string, params: readonly unknown[] = []) => asResult<Row>(await step({ op: 'query', sql, params, tx: id })),
      exec: async (sql) => {
        await step({ op: 'exec', sql, tx: id });
      },
      notify: async (channel, payload = '') => {
        assertChannel(channel);
        await step({ op: 'query', sql: NOTIFY_SQL, params: [channel, payload], tx: id });
      },
    };
    let result: T;
    try {
      result = await guard.runInside(() => work(tx));
    } catch (error) {
      await end('rollback');
      throw error;
    }
    await end('commit');
    return result;
  };

  const hub = createWakeUpHub({
    subscribe: async (channel) => {
      await counted(() => submit({ op: 'exec', sql: `LISTEN ${channel}` }));
    },
    unsubscribe: async (channel) => {
      if (closed === undefined) await submit({ op: 'exec', sql: `UNLISTEN ${channel}` });
    },
    onError: reportWakeUpError(options.logger),
  });
  deliver = (channel, payload) => hub.deliver(channel, payload);

  const database: Database = {
    kind: 'pglite',
    async query<Row>(sql: string, params: readonly unknown[] = []) {
      guard.assertOutside('query');
      return counted(async () => asResult<Row>(await submit({ op: 'query', sql, params })));
    },
    async exec(sql) {
      guard.assertOutside('exec');
      await counted(() => submit({ op: 'exec', sql }));
    },
    async transaction(work) {
      guard.assertOutside('transaction');
      return counted(() => runTransaction(work));
    },
    async ping() {
      const started = performance.now();
      await database.query('SELECT 1');
      return performance.now() - started;
    },
    poolStats(): PoolStats {
      return { total: 1, idle: inFlight === 0 ? 1 : 0, waiting: Math.max(0, inFlight - 1) };
    },
    async listen(channel, handler) {
      guard.assertOutside('listen');
      return hub.listen(channel, handler);
    },
    async notify(channel, payload = '') {
      guard.assertOutside('notify');
      assertChannel(channel);
      await counted(() => submit({ op: 'query', sql: NOTIFY_SQL, params: [channel, payload] }));
    },
    close() {
      closed ??= (async () => {
        hub.stopAll();
        // After everything called before close: it waits its turn like a transaction.
        await turns.hold();
        try {
          await worker.close();
        } finally {
          await lock?.release();
        }
      })();
      return closed;
    },
  };
  return database;
}
