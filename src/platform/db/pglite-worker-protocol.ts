/**
 * Messages between the PGlite adapter (`./pglite.ts`, main thread) and the worker thread that owns the
 * PGlite instance (`./pglite-worker.ts`). The worker runs requests strictly in the order they arrive and
 * answers each once; values cross by structured clone, which keeps Date, bigint and Uint8Array as they are.
 */

/** What the worker is started with (`workerData`). */
export interface WorkerOptions {
  /** PGlite's data directory; absent keeps the data in memory. */
  readonly dataDir: string | undefined;
}

/**
 * A statement or transaction step. Every operation is answered except `begin`, which is posted without
 * waiting so a transaction costs no extra round trip: if it fails, the worker answers the transaction's
 * statements (marked with its `tx`) and its `commit` or `rollback` with that failure, and never runs
 * them outside any transaction.
 */
export type Operation =
  | { readonly op: 'query'; readonly sql: string; readonly params: readonly unknown[]; readonly tx?: number }
  | { readonly op: 'exec'; readonly sql: string; readonly tx?: number }
  | { readonly op: 'begin' | 'commit' | 'rollback'; readonly tx: number }
  | { readonly op: 'close' };

export type Request = Operation & { readonly id: number };

/** The rows of a query, values already parsed by the worker (`./values.ts`). */
export interface WireResult {
  readonly rows: unknown[];
  readonly rowCount: number;
}

/** An error as it crosses the thread boundary: structured clone keeps an Error's message, not its fields. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  /** The error's own string and number properties: SQLSTATE `code`, `severity`, `constraint`, `detail`… */
  readonly fields: Readonly<Record<string, string | number>>;
}

/** Id 0 answers the start: PGlite is open (`ok`) or failed to open. */
export type Response =
  | { readonly id: number; readonly ok: true; readonly result: WireResult | undefined }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

export const READY_ID = 0;

/**
 * A notification PGlite received on a channel this connection LISTENs to; posted unasked. PostgreSQL
 * sends it after the notifying transaction committed, so it is posted after that COMMIT's answer.
 */
export interface NotificationMessage {
  readonly notification: { readonly channel: string; readonly payload: string };
}

/** Everything the worker posts. */
export type WorkerMessage = Response | NotificationMessage;

/** Flattens any thrown value into a `WireError`. */
export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), stack: undefined, fields: {} };
  const fields: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === 'string' || typeof value === 'number') fields[key] = value;
  }
  return { name: error.name, message: error.message, stack: error.stack, fields };
}

/** Rebuilds the worker's error on this side, with its fields, for `toDatabaseError` to classify. */
export function fromWireError(wire: WireError): Error {
  const error = new Error(wire.message);
  Object.assign(error, wire.fields);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
