import type { Clock } from '../../../platform/clock.ts';
import { isTransientDatabaseError, type Database } from '../../../platform/db/index.ts';
import { databaseUnavailable } from './errors.ts';

/**
 * Whether a call can be recorded, asked before the provider is paid for it: a call the proxy
 * cannot write down is refused (503 DATABASE_UNAVAILABLE with Retry-After) instead of being made
 * blind and lost.
 *
 * It costs the hot path nothing: under traffic the proxy's own writes (budget holds, call events)
 * keep proving the database reachable, and each failure of theirs that says the database is away
 * closes the gate. Only when nothing was written for `freshMs` does a call wait for one ping
 * first (shared by the calls arriving meanwhile). While closed, calls are refused at once and one
 * ping every `retryAfterMs` tells when the database is back.
 */
export interface RecordGate {
  /**
   * Resolves when the database was reachable within `freshMs` or answers a ping now.
   * @throws BlocksError DATABASE_UNAVAILABLE (503, `retry_after` seconds) otherwise.
   */
  check(): Promise<void>;
  /** A write of the proxy's succeeded: the database is reachable. */
  succeeded(): void;
  /** A write of the proxy's failed; closes the gate when the failure says the database is away. */
  failed(error: unknown): void;
}

export interface RecordGateOptions {
  readonly db: Pick<Database, 'ping'>;
  readonly clock: Pick<Clock, 'now'>;
  /** How long a successful write vouches for the database. Default 1 000 ms. */
  readonly freshMs?: number;
  /** How long a closed gate refuses before pinging again; also the Retry-After. Default 1 000 ms. */
  readonly retryAfterMs?: number;
  /** Longest wait for a ping before the database counts as away. Default 2 000 ms. */
  readonly pingTimeoutMs?: number;
}

export function createRecordGate(options: RecordGateOptions): RecordGate {
  const { db, clock } = options;
  const freshMs = options.freshMs ?? 1_000;
  const retryAfterMs = options.retryAfterMs ?? 1_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
  let reachableAt = Number.NEGATIVE_INFINITY;
  /** While closed, when the next ping may go out; undefined while open. */
  let closedUntil: number | undefined;
  let probing: Promise<boolean> | undefined;

  const close = (): void => {
    closedUntil = clock.now() + retryAfterMs;
  };
  const refuse = (): never => {
    throw databaseUnavailable(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  };

  const ping = async (): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer to a ping within ${pingTimeoutMs} ms`)), pingTimeoutMs);
    });
    try {
      await Promise.race([db.ping(), timeout]);
      reachableAt = clock.now();
      closedUntil = undefined;
      return true;
    } catch {
      // The refusal the caller gets says it all; the pool logs what failed.
      close();
      return false;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async check() {
      const now = clock.now();
      if (closedUntil === undefined && now - reachableAt <= freshMs) return;
      if (closedUntil !== undefined && now < closedUntil && probing === undefined) refuse();
      probing ??= ping().finally(() => {
        probing = undefined;
      });
      if (!(await probing)) refuse();
    },
    succeeded() {
      reachableAt = clock.now();
      closedUntil = undefined;
    },
    failed(error) {
      if (isTransientDatabaseError(error)) close();
    },
  };
}
