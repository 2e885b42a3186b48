import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/port.ts';

/**
 * An idempotency store on the database port: which requests carrying an `Idempotency-Key` ran, and
 * what they answered (draft-ietf-httpapi-idempotency-key-header).
 *
 * Guarantees, for one (tenant, principal, key) within the window:
 * - at most one request runs: {@link IdempotencyStore.begin} creates the row in one statement, and
 *   the primary key lets exactly one of any number of racing callers, on any replica, create it;
 * - a request that began is never run a second time while its row is in flight: a process that
 *   died mid-request leaves its key in flight until the window ends, because nothing can tell
 *   whether it acted before dying (running it again could act twice);
 * - a completed request's answer is returned, unchanged, to every later caller with the same
 *   fingerprint; another fingerprint is told so, never given the answer.
 */
export interface IdempotencyStore {
  /** Claims `scope` for a request with `fingerprint`, or says why it may not run. */
  begin(scope: IdempotencyScope, fingerprint: string): Promise<IdempotencyClaim>;
  /**
   * Stores the answer of the request that owns `scope`. Pass `tx` to commit it together with the
   * request's own writes, so that no crash can leave the writes without the answer.
   */
  complete(scope: IdempotencyScope, answer: StoredAnswer, tx?: Queryable): Promise<void>;
  /** Frees `scope` for the next request (the owner answered 5xx or a stream): it may run again. */
  release(scope: IdempotencyScope): Promise<void>;
  /** Deletes rows past their window; returns how many. Safe on several replicas at once. */
  sweep(): Promise<number>;
}

/** Whose key it is: keys are the caller's own, so one caller's key never meets another's. */
export interface IdempotencyScope {
  readonly tenant: string;
  /** The caller within the tenant (API key id or token subject). */
  readonly principal: string;
  readonly key: string;
}

/** An answer as it is replayed. */
export interface StoredAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export type IdempotencyClaim =
  /** The caller runs the request and must `complete` or `release` the scope. */
  | { readonly kind: 'owned' }
  /** Another request with this key has not answered. */
  | { readonly kind: 'in_flight' }
  /** The key was used for a request with another fingerprint. */
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'replay'; readonly answer: StoredAnswer };

export interface IdempotencyStoreOptions {
  readonly db: Queryable;
  readonly clock: Clock;
  /** How long a key is remembered after its request began. */
  readonly windowMs: number;
}

interface KeyRow {
  fingerprint: string;
  state: 'in_flight' | 'completed';
  status: number | null;
  headers: Record<string, string> | null;
  body: Uint8Array | null;
}

/** Rows deleted per statement, so a large backlog never holds locks for long. */
const SWEEP_BATCH = 5_000;

export function createIdempotencyStore(options: IdempotencyStoreOptions): IdempotencyStore {
  const { db, clock, windowMs } = options;
  const where = 'tenant = $1 AND principal = $2 AND key = $3';
  const params = (scope: IdempotencyScope): string[] => [scope.tenant, scope.principal, scope.key];

  const claim = async (scope: IdempotencyScope, fingerprint: string): Promise<boolean> => {
    const now = clock.now();
    // An expired row is taken over in the same statement, so an old key can be used again.
    const { rowCount } = await db.query(
      `INSERT INTO idempotency_keys (tenant, principal, key, fingerprint, state, created_at, expires_at)
       VALUES ($1, $2, $3, $4, 'in_flight', $5, $6)
       ON CONFLICT (tenant, principal, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', status = NULL, headers = NULL, body = NULL,
             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= EXCLUDED.created_at`,
      [...params(scope), fingerprint, new Date(now).toISOString(), new Date(now + windowMs).toISOString()],
    );
    return rowCount === 1;
  };

  return {
    async begin(scope, fingerprint) {
      // Twice at most: a row seen in conflict may be released before it is read, and is then free.
      for (let round = 0; round < 2; round++) {
        if (await claim(scope, fingerprint)) return { kind: 'owned' };
        const { rows } = await db.query<KeyRow>(
          `SELECT fingerprint, state, status, headers, body FROM idempotency_keys WHERE ${where}`,
          params(scope),
        );
        const row = rows[0];
        if (row === undefined) continue;
        if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
        if (row.state === 'in_flight') return { kind: 'in_flight' };
        return {
          kind: 'replay',
          answer: { status: row.status ?? 200, headers: row.headers ?? {}, body: row.body ?? new Uint8Array() },
        };
      }
      return { kind: 'in_flight' };
    },
    async complete(scope, answer, tx) {
      await (tx ?? db).query(
        `UPDATE idempotency_keys SET state = 'completed', status = $4, headers = $5, body = $6
         WHERE ${where} AND state = 'in_flight'`,
        [...params(scope), answer.status, JSON.stringify(answer.headers), Buffer.from(answer.body)],
      );
    },
    async release(scope) {
      await db.query(`DELETE FROM idempotency_keys WHERE ${where} AND state = 'in_flight'`, params(scope));
    },
    async sweep() {
      let total = 0;
      for (;;) {
        const { rowCount } = await db.query(
          `DELETE FROM idempotency_keys WHERE (tenant, principal, key) IN (
             SELECT tenant, principal, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`,
          [new Date(clock.now()).toISOString(), SWEEP_BATCH],
        );
        total += rowCount;
        if (rowCount < SWEEP_BATCH) return total;
      }
    },
  };
}
