import { beforeEach, expect, it } from 'vitest';
import { decodeProtectedHeader, exportJWK, exportPKCS8, importPKCS8 } from 'jose';
import { createSigningKeys } from '../../../../src/core/identity/tokens/signing-keys.ts';
import { createAccessTokenIssuer } from '../../../../src/core/identity/tokens/issuer.ts';
import { createKeyEncryption } from '../../../../src/core/identity/tokens/key-encryption.ts';
import { createJwtVerifier } from '../../../../src/core/identity/access/jwt-verifier.ts';
import { forEachDatabase } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';
import { manualClock, newKek } from './support.ts';

const postgres = await probeService('postgres');
const TTL = 15 * 60_000;
const SKEW = 30_000;

forEachDatabase(postgres, (fixture) => {
  beforeEach(async () => {
    await fixture.db().query('DELETE FROM signing_keys');
  });

  const build = (kek = newKek(), clock = manualClock()) => {
    const keys = createSigningKeys({
      db: fixture.db(),
      encryption: createKeyEncryption(kek),
      clock,
      maxTokenTtlMs: TTL,
      clockSkewMs: SKEW,
    });
    return { keys, clock, kek };
  };

  it('stores the private key only encrypted, and never hands it out extractable', async () => {
    const { keys, kek } = build();
    const current = await keys.current();
    await expect(exportPKCS8(current.privateKey)).rejects.toThrow(/extractable/);
    const { rows } = await fixture
      .db()
      .query<{ kid: string; encrypted_private: Uint8Array; public_jwk: Record<string, unknown> }>(
        'SELECT kid, encrypted_private, public_jwk FROM signing_keys',
      );
    expect(rows).toHaveLength(1);
    const stored = Buffer.from(rows[0]?.encrypted_private as Uint8Array);
    const pem = new TextDecoder().decode(createKeyEncryption(kek).open(stored, current.kid));
    expect(pem).toContain('PRIVATE KEY');
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    // Neither the PEM, its DER bytes, nor the private scalar inside them appear in the row.
    expect(stored.includes(der)).toBe(false);
    const { d } = await exportJWK(await importPKCS8(pem, 'ES256', { extractable: true }));
    expect(stored.includes(Buffer.from(d as string, 'base64url'))).toBe(false);
    expect(stored.toString('latin1')).not.toContain('PRIVATE KEY');
    expect(JSON.stringify(rows[0]?.public_jwk)).not.toContain('"d"');
  });

  it('reads its keys back only with the same key-encryption key', async () => {
    const { keys, kek, clock } = build();
    const { kid } = await keys.current();
    const again = createSigningKeys({ db: fixture.db(), encryption: createKeyEncryption(kek), clock, maxTokenTtlMs: TTL });
    expect((await again.current()).kid).toBe(kid);
    const wrong = createSigningKeys({ db: fixture.db(), encryption: createKeyEncryption(newKek()), clock, maxTokenTtlMs: TTL });
    await expect(wrong.current()).rejects.toThrow();
  });

  it('makes one current key, even when two replicas ask for it at once', async () => {
    const { keys, kek, clock } = build();
    const other = createSigningKeys({ db: fixture.db(), encryption: createKeyEncryption(kek), clock, maxTokenTtlMs: TTL });
    const [a, b] = await Promise.all([keys.current(), other.current()]);
    expect(a.kid).toBe(b.kid);
    expect((await keys.jwks()).keys).toHaveLength(1);
  });

  it('rotation keeps the old kid in the JWKS until its tokens have expired, then drops it', async () => {
    const { keys, clock } = build();
    const tokens = createAccessTokenIssuer({ issuer: () => 'https://blocks.test', keys, clock, maxTtlMs: TTL });
    const old = await tokens.issueAccessToken({ subject: 'c1', tenant: 't1', scopes: ['a'], audience: 'blocks' });
    const { kid, retired } = await keys.rotateKeys();
    expect(retired).toBe(old.kid);
    expect(kid).not.toBe(old.kid);
    const fresh = await tokens.issueAccessToken({ subject: 'c1', tenant: 't1', scopes: ['a'], audience: 'blocks' });
    expect(decodeProtectedHeader(fresh.token).kid).toBe(kid);

    const verifier = createJwtVerifier({
      issuers: [{ issuer: 'https://blocks.test', audience: 'blocks', keys: () => keys.jwks() }],
      now: () => Math.floor(clock.now() / 1000),
    });
    await expect(verifier.verify(old.token)).resolves.toMatchObject({ subject: 'c1', tenant: 't1', scopes: ['a'] });
    expect((await keys.jwks()).keys.map((key) => key.kid)).toEqual([kid, old.kid]);

    clock.advance(TTL + SKEW - 1000);
    expect((await keys.jwks()).keys.map((key) => key.kid)).toEqual([kid, old.kid]);
    clock.advance(2000);
    expect((await keys.jwks()).keys.map((key) => key.kid)).toEqual([kid]);
    await expect(verifier.verify(old.token)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
  });

  it('caps a token lifetime at the TTL the retired keys are kept for', async () => {
    const { keys, clock } = build();
    const tokens = createAccessTokenIssuer({ issuer: () => 'https://blocks.test', keys, clock, maxTtlMs: TTL });
    const issued = await tokens.issueAccessToken({ subject: 'c', tenant: 't', scopes: [], audience: 'a', ttlMs: 10 * TTL });
    expect(issued.expiresIn).toBe(TTL / 1000);
  });

  it('refuses a sealed key moved to another row', async () => {
    const { keys, kek, clock } = build();
    await keys.current();
    await keys.rotateKeys();
    // Swap the ciphertexts of the two rows: the kid is bound in as associated data.
    await fixture.db().query(
      `UPDATE signing_keys SET encrypted_private = (SELECT encrypted_private FROM signing_keys WHERE retired_at IS NOT NULL)
       WHERE retired_at IS NULL`,
    );
    const fresh = createSigningKeys({ db: fixture.db(), encryption: createKeyEncryption(kek), clock, maxTokenTtlMs: TTL });
    await expect(fresh.current()).rejects.toThrow();
  });
});
