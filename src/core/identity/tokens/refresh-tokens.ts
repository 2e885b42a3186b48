import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../../platform/clock.ts';
import type { Database, Queryable } from '../../../platform/db/port.ts';
import { auditChange, type ChangeContext } from '../change-context.ts';

/** Audit event: a refresh token was presented after it had been rotated, or by another client; its family is revoked. */
export const REFRESH_TOKEN_REUSED = 'identity.refresh_token.reused';

/** What a refresh token stands for: who it was granted to, through which client, with which scopes. */
export interface RefreshGrant {
  readonly tenant: string;
  readonly clientId: string;
  /** `sub` of the access tokens it yields. */
  readonly subject: string;
  /** The user of a password grant; null for a client acting for itself. */
  readonly userId: string | null;
  /** The original grant: a refresh may ask for fewer, never for more. */
  readonly scopes: readonly string[];
}

export interface StoredRefreshToken extends RefreshGrant {
  readonly id: string;
  readonly familyId: string;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  /** Rotated already: presenting it again is reuse. */
  readonly used: boolean;
}

export type Rotation =
  | { readonly outcome: 'rotated'; readonly token: string }
  /** Gone meanwhile (its family revoked, its user or client deleted) or expired. */
  | { readonly outcome: 'refused' }
  /** Another use rotated it first: the family is revoked now. */
  | { readonly outcome: 'reused' };

export interface RefreshTokens {
  /** Starts a family for a new grant and returns its first token (the only time it exists outside the client). */
  issue(grant: RefreshGrant): Promise<string>;
  /** The stored token behind a raw one, read without a lock; null when malformed or unknown. */
  find(raw: string): Promise<StoredRefreshToken | null>;
  /** Deletes every token of the token's family and writes the audit event saying why. */
  revokeFamily(token: StoredRefreshToken, reason: 'reused' | 'wrong_client', context: ChangeContext): Promise<void>;
  /**
   * Marks the token used and issues its successor in one transaction holding the token's row: of
   * two uses racing, one rotates and the other then finds it used, which revokes the family.
   */
  rotate(token: StoredRefreshToken, context: ChangeContext): Promise<Rotation>;
}

export interface RefreshTokensOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly ttlMs: number;
  readonly onEventAppended?: (() => void) | undefined;
}

interface TokenRow {
  id: string;
  family_id: string;
  tenant: string;
  client_id: string;
  user_id: string | null;
  subject: string;
  scopes: string[];
  expires_at: Date;
  used_at: Date | null;
}

// brt_ + 43 base64url characters (32 bytes): anything else is refused before hashing or querying.
const RAW_TOKEN = /^brt_[A-Za-z0-9_-]{43}$/;
const newRawToken = (): string => `brt_${randomBytes(32).toString('base64url')}`;
const hashOf = (raw: string): Buffer => createHash('sha256').update(raw).digest();
const iso = (ms: number): string => new Date(ms).toISOString();

export function createRefreshTokens(options: RefreshTokensOptions): RefreshTokens {
  const { db, clock, ttlMs } = options;

  const insert = async (tx: Queryable, familyId: string, grant: RefreshGrant, now: number): Promise<string> => {
    const raw = newRawToken();
    await tx.query(
      `INSERT INTO refresh_tokens (id, token_hash, family_id, tenant, client_id, user_id, subject, scopes, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9::timestamptz, $10::timestamptz)`,
      [
        randomUUID(),
        hashOf(raw),
        familyId,
        grant.tenant,
        grant.clientId,
        grant.userId,
        grant.subject,
        [...grant.scopes],
        iso(now),
        iso(now + ttlMs),
      ],
    );
    return raw;
  };

  const deleteFamily = async (tx: Queryable, token: StoredRefreshToken, reason: string, context: ChangeContext): Promise<void> => {
    const { rowCount } = await tx.query('DELETE FROM refresh_tokens WHERE family_id = $1', [token.familyId]);
    await auditChange(tx, REFRESH_TOKEN_REUSED, token.tenant, context, {
      reason,
      family_id: token.familyId,
      client_id: token.clientId,
      subject: token.subject,
      revoked_tokens: rowCount,
    });
  };

  return {
    async issue(grant) {
      const now = clock.now();
      return db.transaction(async (tx) => {
        // A user's expired sessions go at their next login: the table does not grow with logins forever.
        if (grant.userId !== null) {
          await tx.query('DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at <= $2::timestamptz', [grant.userId, iso(now)]);
        }
        return insert(tx, randomUUID(), grant, now);
      });
    },

    async find(raw) {
      if (!RAW_TOKEN.test(raw)) return null;
      const { rows } = await db.query<TokenRow>(
        `SELECT id, family_id, tenant, client_id, user_id, subject, scopes, expires_at, used_at
         FROM refresh_tokens WHERE token_hash = $1`,
        [hashOf(raw)],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        id: row.id,
        familyId: row.family_id,
        tenant: row.tenant,
        clientId: row.client_id,
        userId: row.user_id,
        subject: row.subject,
        scopes: Object.freeze([...row.scopes]),
        expiresAt: row.expires_at.getTime(),
        used: row.used_at !== null,
      };
    },

    async revokeFamily(token, reason, context) {
      await db.transaction((tx) => deleteFamily(tx, token, reason, context));
      options.onEventAppended?.();
    },

    async rotate(token, context) {
      const now = clock.now();
      const rotation = await db.transaction(async (tx): Promise<Rotation> => {
        const { rows } = await tx.query<{ used_at: Date | null; expires_at: Date }>(
          'SELECT used_at, expires_at FROM refresh_tokens WHERE id = $1 FOR UPDATE',
          [token.id],
        );
        const row = rows[0];
        if (row === undefined) return { outcome: 'refused' };
        if (row.used_at !== null) {
          await deleteFamily(tx, token, 'reused', context);
          return { outcome: 'reused' };
        }
        if (row.expires_at.getTime() <= now) return { outcome: 'refused' };
        await tx.query('UPDATE refresh_tokens SET used_at = $2::timestamptz WHERE id = $1', [token.id, iso(now)]);
        return { outcome: 'rotated', token: await insert(tx, token.familyId, token, now) };
      });
      if (rotation.outcome === 'reused') options.onEventAppended?.();
      return rotation;
    },
  };
}
