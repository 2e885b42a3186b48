import type { JWK } from 'jose';
import type { Queryable } from '../../../platform/db/port.ts';

export interface SigningKeyRow {
  readonly kid: string;
  readonly alg: string;
  readonly public_jwk: JWK;
  readonly encrypted_private: Uint8Array;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The key that signs new tokens, if any. */
export async function selectCurrentKey(db: Queryable): Promise<SigningKeyRow | undefined> {
  const { rows } = await db.query<SigningKeyRow>(
    'SELECT kid, alg, public_jwk, encrypted_private FROM signing_keys WHERE retired_at IS NULL',
  );
  return rows[0];
}

/** Adds a current key; false when another one is current already (another replica won the race). */
export async function insertCurrentKey(db: Queryable, key: SigningKeyRow, nowMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO signing_keys (kid, alg, public_jwk, encrypted_private, created_at)
     VALUES ($1, $2, $3, $4, $5::timestamptz)
     ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING`,
    [key.kid, key.alg, JSON.stringify(key.public_jwk), key.encrypted_private, iso(nowMs)],
  );
  return rowCount === 1;
}

/** Retires the current key (locking it, so two rotations run one after the other); its kid, if there was one. */
export async function retireCurrentKey(db: Queryable, nowMs: number, expiresAtMs: number): Promise<string | undefined> {
  const { rows } = await db.query<{ kid: string }>(
    `UPDATE signing_keys SET retired_at = $1::timestamptz, expires_at = $2::timestamptz
     WHERE kid = (SELECT kid FROM signing_keys WHERE retired_at IS NULL FOR UPDATE)
     RETURNING kid`,
    [iso(nowMs), iso(expiresAtMs)],
  );
  return rows[0]?.kid;
}

/** Public keys that may still verify a token: the current one and those retired but not expired. */
export async function selectVerificationKeys(db: Queryable, nowMs: number): Promise<JWK[]> {
  const { rows } = await db.query<{ public_jwk: JWK }>(
    `SELECT public_jwk FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1::timestamptz
     ORDER BY retired_at DESC NULLS FIRST, created_at DESC`,
    [iso(nowMs)],
  );
  return rows.map((row) => row.public_jwk);
}
