import { Worker } from 'node:worker_threads';
import { toDatabaseError } from './errors.ts';
import {
  READY_ID,
  fromWireError,
  type Operation,
  type Request,
  type Response,
  type WireResult,
  type WorkerMessage,
  type WorkerOptions,
} from './pglite-worker-protocol.ts';

/** The main thread's end of the PGlite worker thread. */
export interface PgliteWorker {
  /**
   * Posts `operation` now; the worker runs operations in the order they were posted. Resolves with its
   * result, rejects with a `DatabaseError` when PGlite reported one, or with an `Error` once the worker
   * has died or closed.
   */
  call(operation: Exclude<Operation, { op: 'begin' }>): Promise<WireResult | undefined>;
  /** Posts a `begin` (never answered: its failure reaches the transaction's later steps). A no-op once dead. */
  begin(tx: number): void;
  /** Closes PGlite after everything posted before it, then ends the thread. Safe after the worker died. */
  close(): Promise<void>;
}

/**
 * The thread inherits this process's Node options, except `--input-type`, which Node refuses for a
 * worker loaded from a file (a process started with `node --input-type=module -e …` could not open the database).
 */
function workerExecArgv(execArgv: readonly string[]): string[] {
  return execArgv.filter((arg, i) => !arg.startsWith('--input-type') && execArgv[i - 1] !== '--input-type');
}

interface Pending {
  readonly resolve: (result: WireResult | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Starts the worker that owns PGlite (`./pglite-worker.ts`) and resolves once PGlite is open there.
 * If the thread dies (an uncaught error, a WASM abort, terminate), every call waiting on it and every
 * later call rejects with `PGlite worker thread died: <reason>` rather than hanging. The thread keeps
 * the process alive only while calls are waiting on it, as PGlite in this thread would.
 * `onNotification` hears the notifications of channels the connection LISTENs to.
 */
export async function startPgliteWorker(
  options: WorkerOptions,
  onNotification: (channel: string, payload: string) => void = () => undefined,
): Promise<PgliteWorker> {
  const worker = new Worker(new URL('./pglite-worker.ts', import.meta.url), {
    workerData: options,
    execArgv: workerExecArgv(process.execArgv),
  });
  const pending = new Map<number, Pending>();
  let nextId = READY_ID + 1;
  let dead: Error | undefined;
  let lastError: unknown;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  const settle = (response: Response): void => {
    const waiter = pending.get(response.id);
    if (waiter === undefined) return;
    pending.delete(response.id);
    if (pending.size === 0) worker.unref();
    if (response.ok) waiter.resolve(response.result);
    else waiter.reject(toDatabaseError(fromWireError(response.error)));
  };

  const die = (reason: string): void => {
    dead ??= new Error(`PGlite worker thread died: ${reason}`, { cause: lastError });
    const waiters = [...pending.values()];
    pending.clear();
    for (const waiter of waiters) waiter.reject(dead);
  };

  worker.on('message', (message: WorkerMessage) => {
    if ('notification' in message) onNotification(message.notification.channel, message.notification.payload);
    else settle(message);
  });
  worker.on('error', (error) => {
    lastError = error;
  });
  worker.on('messageerror', (error) => {
    // A reply that cannot be read leaves its caller unanswered: treat the thread as lost.
    lastError = error;
    die(`a reply could not be deserialised (${error.message})`);
    void worker.terminate();
  });
  worker.once('exit', (code) => {
    const detail = lastError instanceof Error ? lastError.message : `exit code ${code}`;
    die(detail);
  });

  const post = (id: number, operation: Operation): Promise<WireResult | undefined> =>
    new Promise((resolve, reject) => {
      if (dead !== undefined) {
        reject(dead);
        return;
      }
      try {
        worker.postMessage({ ...operation, id } satisfies Request);
      } catch (error) {
        // A parameter structured clone cannot copy (a function, a class with private state).
        reject(error);
        return;
      }
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve, reject });
    });

  const ready = new Promise<WireResult | undefined>((resolve, reject) => pending.set(READY_ID, { resolve, reject }));
  try {
    await ready;
  } catch (error) {
    await worker.terminate();
    throw error;
  }

  let closing: Promise<void> | undefined;
  return {
    call: (operation) => post(nextId++, operation),
    begin(tx) {
      if (dead === undefined) worker.postMessage({ op: 'begin', tx, id: nextId++ } satisfies Request);
    },
    close() {
      closing ??= (async () => {
        try {
          if (dead === undefined) {
            const closed = post(nextId++, { op: 'close' });
            dead = new Error('the PGlite database is closed');
            await closed;
          }
        } finally {
          await worker.terminate();
          await exit;
        }
      })();
      return closing;
    },
  };
}
