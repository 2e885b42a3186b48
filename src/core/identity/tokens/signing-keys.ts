import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type CryptoKey, type JSONWebKeySet } from 'jose';
import type { Database } from '../../../platform/db/port.ts';
import type { Clock } from '../../../platform/clock.ts';
import type { KeyEncryption } from './key-encryption.ts';
import { insertCurrentKey, retireCurrentKey, selectCurrentKey, selectVerificationKeys, type SigningKeyRow } from './store.ts';

export type SigningAlgorithm = 'ES256' | 'EdDSA';

export interface CurrentSigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey;
}

export interface SigningKeys {
  /** The key new tokens are signed with; the first call on an empty table creates it. */
  current(): Promise<CurrentSigningKey>;
  /**
   * Makes a new current key and retires the old one, which stays in the JWKS until every token it
   * signed has expired (`maxTokenTtlMs` plus the verifiers' clock skew). Returns both kids.
   */
  rotateKeys(): Promise<{ kid: string; retired?: string }>;
  /** The public keys that may still verify a token: the JWKS document. */
  jwks(): Promise<JSONWebKeySet>;
}

export interface SigningKeysOptions {
  readonly db: Database;
  readonly encryption: KeyEncryption;
  readonly clock: Clock;
  /** Longest lifetime of a token this issuer signs. */
  readonly maxTokenTtlMs: number;
  /** Clock skew verifiers allow past `exp` (30 s in ours). */
  readonly clockSkewMs?: number;
  readonly alg?: SigningAlgorithm;
}

/** Signing keys of Blocks' authorization server, kept in `signing_keys` with the private half encrypted. */
export function createSigningKeys(options: SigningKeysOptions): SigningKeys {
  const { db, encryption, clock } = options;
  const alg = options.alg ?? 'ES256';
  const keepAfterRetirementMs = options.maxTokenTtlMs + (options.clockSkewMs ?? 30_000);
  // Decrypted private keys by kid: decrypting and importing on each token would cost more than signing.
  const privateKeys = new Map<string, Promise<CryptoKey>>();

  const newKey = async (): Promise<SigningKeyRow> => {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const pkcs8 = new TextEncoder().encode(await exportPKCS8(privateKey));
    return {
      kid,
      alg,
      public_jwk: { ...jwk, kid, alg, use: 'sig' },
      encrypted_private: encryption.seal(pkcs8, kid),
    };
  };

  const unseal = (row: SigningKeyRow): Promise<CryptoKey> => {
    let key = privateKeys.get(row.kid);
    if (!key) {
      const pem = new TextDecoder().decode(encryption.open(row.encrypted_private, row.kid));
      key = importPKCS8(pem, row.alg);
      privateKeys.set(row.kid, key);
    }
    return key;
  };

  return {
    async current() {
      let row = await selectCurrentKey(db);
      if (!row) {
        await insertCurrentKey(db, await newKey(), clock.now());
        row = await selectCurrentKey(db);
        if (!row) throw new Error('no current signing key after creating one');
      }
      return { kid: row.kid, alg: row.alg as SigningAlgorithm, privateKey: await unseal(row) };
    },
    async rotateKeys() {
      const fresh = await newKey();
      return db.transaction(async (tx) => {
        const now = clock.now();
        const retired = await retireCurrentKey(tx, now, now + keepAfterRetirementMs);
        if (!(await insertCurrentKey(tx, fresh, now))) throw new Error('another signing key became current during rotation');
        return retired ? { kid: fresh.kid, retired } : { kid: fresh.kid };
      });
    },
    async jwks() {
      return { keys: await selectVerificationKeys(db, clock.now()) };
    },
  };
}
