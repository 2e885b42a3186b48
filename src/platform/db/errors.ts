/**
 * Errors the database reports, the same for both adapters: callers branch on the SQLSTATE `code`
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html), never on a message or a driver class.
 */

/** SQLSTATE codes callers branch on. */
export const SQLSTATE = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  notNullViolation: '23502',
  checkViolation: '23514',
  /** A statement failed earlier in the transaction, so it was rolled back instead of committed. */
  inFailedTransaction: '25P02',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  undefinedTable: '42P01',
} as const;

/** An error the database server reported. `code` is its SQLSTATE; the driver's own error is the `cause`. */
export class DatabaseError extends Error {
  readonly code: string;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly detail: string | undefined;

  constructor(
    message: string,
    fields: { code: string; constraint?: string; table?: string; column?: string; detail?: string },
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'DatabaseError';
    this.code = fields.code;
    this.constraint = fields.constraint;
    this.table = fields.table;
    this.column = fields.column;
    this.detail = fields.detail;
  }
}

export const isDatabaseError = (error: unknown): error is DatabaseError => error instanceof DatabaseError;

/** True when `error` is a unique or primary-key violation (23505), whichever adapter raised it. */
export const isUniqueViolation = (error: unknown): error is DatabaseError =>
  isDatabaseError(error) && error.code === SQLSTATE.uniqueViolation;

/** Thrown when the database is used directly inside one of its own transactions instead of through `tx`. */
export class NestedDatabaseUseError extends Error {
  constructor(operation: string) {
    super(
      `db.${operation}() was called inside db.transaction(): use the transaction's tx instead ` +
        '(on PGlite the call would wait for the transaction forever)',
    );
    this.name = 'NestedDatabaseUseError';
  }
}

const optionalString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Wraps an error from pg or PGlite in a `DatabaseError` when the server reported it (it carries a
 * SQLSTATE and a severity); anything else (a refused connection, a bug) is returned unchanged.
 */
export function toDatabaseError(error: unknown): unknown {
  if (error instanceof DatabaseError || typeof error !== 'object' || error === null) return error;
  const fields = error as Record<string, unknown>;
  const code = fields.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || typeof fields.severity !== 'string') return error;
  const message = error instanceof Error ? error.message : String(fields.message);
  return new DatabaseError(
    message,
    {
      code,
      constraint: optionalString(fields.constraint),
      table: optionalString(fields.table),
      column: optionalString(fields.column),
      detail: optionalString(fields.detail),
    },
    error,
  );
}

/** SQLSTATE classes and codes of a database that is away or overloaded, not of a bad statement. */
const TRANSIENT_SQLSTATE = /^(08|53|57P)|^(40001|40P01)$/;
/** Socket errors of a server that is down, restarting or unreachable. */
const TRANSIENT_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/**
 * pg's own connection failures carry no code, only these messages (pg 8: a connection dropped
 * mid-query, the pool's connect timeout, a client that already failed).
 */
const TRANSIENT_PG_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
];

/**
 * True when `error` (or an error in its `cause` chain) says the database could not do the work
 * now but may later, so the same work should be tried again: the connection was refused, reset or
 * ended (SQLSTATE class 08, socket errors, pg's connection messages), the server lacks resources
 * (53), is shutting down or was restarted by its operator (57P), or the transaction lost a
 * serialization or deadlock race (40001, 40P01). Anything else (a constraint, bad SQL, a handler's
 * own validation error) is not: trying it again gives the same answer.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (typeof current !== 'object') return false;
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (current instanceof DatabaseError) return TRANSIENT_SQLSTATE.test(current.code);
    if (typeof code === 'string' && TRANSIENT_SOCKET_CODES.has(code)) return true;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE.test(code)) return true;
    if (typeof message === 'string' && TRANSIENT_PG_MESSAGES.some((text) => message.startsWith(text))) return true;
    current = cause;
  }
  return false;
}
