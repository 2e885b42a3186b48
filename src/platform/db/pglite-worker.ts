/**
 * The worker thread that owns the PGlite instance (started by `./pglite-worker-client.ts`). PGlite runs
 * each statement synchronously on the thread that calls it; here that blocks this thread instead of the
 * main event loop that serves HTTP. Requests are run one at a time in arrival order, which is all the
 * isolation the adapter needs: the main thread never sends another caller's statement while a
 * transaction is open.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, TransactionAbortedError, type Results } from '@electric-sql/pglite';
import { OID, keepText } from './values.ts';
import {
  READY_ID,
  toWireError,
  type NotificationMessage,
  type Request,
  type Response,
  type WireError,
  type WireResult,
  type WorkerOptions,
} from './pglite-worker-protocol.ts';

if (parentPort === null) throw new Error('pglite-worker.ts runs only as a worker thread (see pglite-worker-client.ts)');
const port = parentPort;
const { dataDir } = workerData as WorkerOptions;
const SHARED_BUFFERS = '32MB';

const post = (response: Response): void => {
  try {
    port.postMessage(response);
  } catch (error) {
    // A row structured clone cannot copy: the caller gets the reason instead of waiting forever.
    port.postMessage({ id: response.id, ok: false, error: toWireError(error) } satisfies Response);
  }
};

// PGlite reports 0 affected rows for a SELECT; pg's rowCount is then the number of rows returned.
const toResult = (result: Results<unknown>): WireResult => {
  const affected = result.affectedRows ?? 0;
  return { rows: result.rows, rowCount: affected > 0 ? affected : result.rows.length };
};

async function open(): Promise<PGlite> {
  return PGlite.create(dataDir, {
    // The same values as the PostgreSQL adapter (./values.ts); PGlite derives the array parsers
    // (date[], interval[]) from these element parsers. Rows are parsed here, before they cross.
    parsers: { [OID.date]: keepText, [OID.interval]: keepText },
    // On Node the data directory is NODEFS: every write reaches the file during the query and
    // PGlite's syncToFs is a no-op, so "relaxed" only skips awaiting that no-op behind a mutex,
    // which costs about half of a small statement's time. Durability is the same either way.
    relaxedDurability: true,
    // PGlite's 128 MB of shared buffers live in its WASM memory and were all resident from the start
    // (156 MB of WASM at idle). 32 MB keeps an embedded database's hot pages, and the operating
    // system's page cache holds the files behind them: WASM resident 52 MB, throughput under 50
    // connections unchanged within noise (npm run bench:overload).
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
  });
}

function serve(lite: PGlite): void {
  // PGlite reports every NotificationResponse its statements produce, whichever API ran them.
  lite.onNotification((channel, payload) => port.postMessage({ notification: { channel, payload } } satisfies NotificationMessage));
  const queue: Request[] = [];
  let draining = false;
  // BEGIN is not answered; if it failed, the statements that follow it must not run on their own
  // (each would commit by itself), so they are refused with its error until the transaction ends.
  let failedBegin: { readonly tx: number; readonly error: WireError } | undefined;

  const run = async (request: Request): Promise<WireResult | undefined> => {
    switch (request.op) {
      case 'query':
        return toResult(await lite.query(request.sql, [...request.params]));
      case 'exec':
        await lite.exec(request.sql);
        return undefined;
      case 'begin':
        await lite.exec('BEGIN');
        return undefined;
      case 'commit': {
        // COMMIT of a transaction in which a statement failed answers ROLLBACK rather than an error.
        const [result] = await lite.exec('COMMIT');
        if (result?.command === 'ROLLBACK') throw new TransactionAbortedError();
        return undefined;
      }
      case 'rollback':
        await lite.exec('ROLLBACK');
        return undefined;
      case 'close':
        await lite.close();
        return undefined;
    }
  };

  const answer = async (request: Request): Promise<Response | undefined> => {
    const tx = 'tx' in request ? request.tx : undefined;
    if (failedBegin !== undefined && tx === failedBegin.tx) {
      const { error } = failedBegin;
      if (request.op === 'commit' || request.op === 'rollback') failedBegin = undefined;
      return { id: request.id, ok: false, error };
    }
    try {
      const result = await run(request);
      return request.op === 'begin' ? undefined : { id: request.id, ok: true, result };
    } catch (error) {
      const wire = toWireError(error);
      if (request.op !== 'begin') return { id: request.id, ok: false, error: wire };
      failedBegin = { tx: request.tx, error: wire };
      return undefined;
    }
  };

  const drain = async (): Promise<void> => {
    draining = true;
    for (let request = queue.shift(); request !== undefined; request = queue.shift()) {
      const response = await answer(request);
      if (response !== undefined) post(response);
      if (request.op === 'close') port.close();
    }
    draining = false;
  };

  port.on('message', (request: Request) => {
    queue.push(request);
    if (!draining) void drain();
  });
}

try {
  const lite = await open();
  serve(lite);
  post({ id: READY_ID, ok: true, result: undefined });
} catch (error) {
  post({ id: READY_ID, ok: false, error: toWireError(error) });
  port.close();
}
