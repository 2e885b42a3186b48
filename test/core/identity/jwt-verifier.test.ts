import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, decodeProtectedHeader, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { createJwtVerifier, type JwtVerifier } from '../../../src/core/identity/access/jwt-verifier.ts';
import { isBlocksError } from '../../../src/platform/errors.ts';
import { IDP_AUDIENCE, IDP_CLIENT, startTestIdp, type TestIdp } from '../../platform/auth/oidc-idp.ts';

const now = (): number => Math.floor(Date.now() / 1000);

async function refusal(verifier: JwtVerifier, token: string): Promise<{ code: string; status: number; detail: string }> {
  try {
    await verifier.verify(token);
  } catch (error) {
    if (!isBlocksError(error)) throw error;
    // A refusal never echoes the token back.
    expect(error.detail).not.toContain(token.split('.')[2] || token);
    return { code: error.code, status: error.status, detail: error.detail };
  }
  throw new Error('the token was accepted');
}

describe('JWT verifier against a real OIDC provider', () => {
  let idp: TestIdp;
  let verifier: JwtVerifier;
  const claimsFor = (overrides: Record<string, unknown> = {}) => ({
    iss: idp.issuer,
    sub: 'svc-1',
    aud: IDP_AUDIENCE,
    iat: now(),
    exp: now() + 300,
    scope: 'models:read',
    ...overrides,
  });

  beforeAll(async () => {
    idp = await startTestIdp();
    verifier = createJwtVerifier({ issuers: [{ issuer: idp.issuer, audience: IDP_AUDIENCE, discovery: true }], jwksCooldownMs: 0 });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('verifies a client_credentials token through discovery and JWKS, with its scopes', async () => {
    const token = await idp.token('models:read models:write');
    const verified = await verifier.verify(token);
    expect(verified.issuer).toBe(idp.issuer);
    expect(verified.subject).toBe(IDP_CLIENT.id);
    expect([...verified.scopes].sort()).toEqual(['models:read', 'models:write']);
    expect(verified.claims.aud).toBe(IDP_AUDIENCE);
  });

  it('fetches the JWKS once and reuses it while the kid is known', async () => {
    const fresh = createJwtVerifier({ issuers: [{ issuer: idp.issuer, audience: IDP_AUDIENCE, discovery: true }] });
    const before = idp.jwksFetches;
    for (let i = 0; i < 3; i += 1) await fresh.verify(await idp.token());
    expect(idp.jwksFetches - before).toBe(1);
  });

  it('refetches the JWKS when the IdP rotates its key, and still accepts tokens of the old key', async () => {
    const oldToken = await idp.token();
    await verifier.verify(oldToken);
    const before = idp.jwksFetches;
    await idp.rotate();
    const newToken = await idp.token();
    expect(decodeProtectedHeader(newToken).kid).toBe(idp.currentKid);
    await expect(verifier.verify(newToken)).resolves.toMatchObject({ subject: IDP_CLIENT.id });
    expect(idp.jwksFetches - before).toBe(1);
    await expect(verifier.verify(oldToken)).resolves.toMatchObject({ subject: IDP_CLIENT.id });
  });

  it('refuses an unknown kid while the refetch cooldown lasts', async () => {
    const cooling = createJwtVerifier({
      issuers: [{ issuer: idp.issuer, audience: IDP_AUDIENCE, discovery: true }],
      jwksCooldownMs: 60_000,
    });
    await cooling.verify(await idp.token());
    await idp.rotate();
    const before = idp.jwksFetches;
    expect(await refusal(cooling, await idp.token())).toMatchObject({ code: 'INVALID_TOKEN', detail: expect.stringContaining('kid') });
    expect(idp.jwksFetches).toBe(before);
  });

  it('accepts exp and nbf within the clock skew and refuses them beyond it', async () => {
    await expect(verifier.verify(await idp.sign(claimsFor({ exp: now() - 10 })))).resolves.toBeDefined();
    await expect(verifier.verify(await idp.sign(claimsFor({ nbf: now() + 10 })))).resolves.toBeDefined();
    expect(await refusal(verifier, await idp.sign(claimsFor({ exp: now() - 60 })))).toEqual({
      code: 'INVALID_TOKEN',
      status: 401,
      detail: 'The token has expired',
    });
    expect((await refusal(verifier, await idp.sign(claimsFor({ nbf: now() + 120 })))).detail).toBe('The token is not valid yet (nbf)');
  });

  it('refuses a token for another audience or from an untrusted issuer', async () => {
    expect((await refusal(verifier, await idp.sign(claimsFor({ aud: 'https://other.example' })))).detail).toBe(
      'The token is not meant for this audience',
    );
    expect((await refusal(verifier, await idp.sign(claimsFor({ iss: 'https://evil.example' })))).detail).toBe(
      'The token issuer is not trusted',
    );
  });

  it('refuses a token without exp or without a required claim', async () => {
    const { exp: _exp, ...noExp } = claimsFor();
    expect((await refusal(verifier, await idp.sign(noExp))).detail).toBe('The token lacks the required claim "exp"');
    const strict = createJwtVerifier({
      issuers: [{ issuer: idp.issuer, audience: IDP_AUDIENCE, discovery: true }],
      requiredClaims: ['tenant'],
    });
    expect((await refusal(strict, await idp.sign(claimsFor()))).detail).toBe('The token lacks the required claim "tenant"');
    await expect(strict.verify(await idp.sign(claimsFor({ tenant: 'acme' })))).resolves.toMatchObject({ tenant: 'acme' });
  });

  it('refuses alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify(claimsFor()));
    expect((await refusal(verifier, `${header}.${payload}.`)).detail).toBe('Algorithm none is not allowed');
  });

  it('refuses HS256 signed with the public key as the shared secret (key confusion)', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const rsaVerifier = createJwtVerifier({
      issuers: [{ issuer: 'https://rsa.example', audience: 'api', keys: async () => ({ keys: [] }) }],
    });
    const pem = await exportSPKI(publicKey);
    const forged = await new SignJWT(claimsFor({ iss: 'https://rsa.example', aud: 'api' }))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(pem));
    expect((await refusal(rsaVerifier, forged)).detail).toBe('Algorithm HS256 is not allowed');
    // Even the IdP's own JWKS as text cannot serve as an HMAC secret.
    const jwks = await (await fetch(`${idp.issuer}/jwks`)).text();
    const forgedWithJwks = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(jwks));
    expect((await refusal(verifier, forgedWithJwks)).detail).toBe('Algorithm HS256 is not allowed');
  });

  it('will not be configured with a symmetric algorithm or none', () => {
    for (const alg of ['HS256', 'HS512', 'none']) {
      expect(() => createJwtVerifier({ issuers: [{ issuer: 'x', audience: 'y', discovery: true }], algorithms: ['ES256', alg] })).toThrow(
        alg,
      );
    }
  });

  it('refuses a tampered payload and a signature by another key under the IdP kid', async () => {
    const [header, , signature] = (await idp.token('models:read')).split('.');
    const claims = claimsFor({ sub: IDP_CLIENT.id, scope: 'models:read admin' });
    const tampered = `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
    expect((await refusal(verifier, tampered)).detail).toBe('The token signature is not valid');

    const { privateKey } = await generateKeyPair('ES256');
    const impostor = await new SignJWT(claimsFor()).setProtectedHeader({ alg: 'ES256', kid: idp.currentKid }).sign(privateKey);
    expect((await refusal(verifier, impostor)).detail).toBe('The token signature is not valid');
  });

  it('refuses an algorithm outside the allowlist even when it is asymmetric', async () => {
    const es256Only = createJwtVerifier({
      issuers: [{ issuer: idp.issuer, audience: IDP_AUDIENCE, discovery: true }],
      algorithms: ['RS256'],
    });
    expect((await refusal(es256Only, await idp.token())).detail).toBe('Algorithm ES256 is not allowed');
  });

  it('refuses garbage as a malformed token', async () => {
    expect((await refusal(verifier, 'not-a-jwt')).detail).toBe('The token is not a well-formed signed JWT');
  });

  it('reads scopes from an scp array', async () => {
    const verified = await verifier.verify(await idp.sign(claimsFor({ scope: undefined, scp: ['a:read', 'b:write'] })));
    expect(verified.scopes).toEqual(['a:read', 'b:write']);
  });
});

describe('JWT verifier when the issuer is unreachable', () => {
  it('answers 503 TOKEN_ISSUER_UNAVAILABLE when discovery cannot be fetched', async () => {
    const idp = await startTestIdp();
    const token = await idp.token();
    const issuer = idp.issuer;
    await idp.close();
    const verifier = createJwtVerifier({ issuers: [{ issuer, audience: IDP_AUDIENCE, discovery: true }], fetchTimeoutMs: 1000 });
    const error = await verifier.verify(token).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'TOKEN_ISSUER_UNAVAILABLE', status: 503 });
  });

  it('answers 503 when the JWKS endpoint fails', async () => {
    const verifier = createJwtVerifier({
      issuers: [{ issuer: 'https://idp.example', audience: 'api', jwksUri: 'http://127.0.0.1:9/jwks' }],
      fetchTimeoutMs: 1000,
    });
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: 's', aud: 'api', iss: 'https://idp.example', exp: now() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .sign(privateKey);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: 'TOKEN_ISSUER_UNAVAILABLE', status: 503 });
  });

  it('answers 503 with a time to retry, not 401, when the key set answers an error status, is not JSON or is too large', async () => {
    const bodies: Record<string, [number, string]> = {
      '/status': [503, '{"keys":[]}'],
      '/missing': [404, 'not here'],
      '/page': [200, '<html>a login page</html>'],
      '/huge': [200, `{"keys":[],"pad":"${'x'.repeat(600 * 1024)}"}`],
    };
    const server = createServer((request, response) => {
      const [status, body] = bodies[request.url ?? ''] ?? [500, ''];
      response.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const { privateKey } = await generateKeyPair('ES256');
      for (const path of Object.keys(bodies)) {
        const verifier = createJwtVerifier({
          issuers: [{ issuer: 'https://idp.example', audience: 'api', jwksUri: `http://127.0.0.1:${port}${path}` }],
          fetchTimeoutMs: 2000,
        });
        const token = await new SignJWT({ sub: 's', aud: 'api', iss: 'https://idp.example', exp: now() + 60 })
          .setProtectedHeader({ alg: 'ES256', kid: 'k' })
          .sign(privateKey);
        const error = await verifier.verify(token).catch((caught: unknown) => caught);
        expect(error, path).toMatchObject({ code: 'TOKEN_ISSUER_UNAVAILABLE', status: 503, extensions: { retry_after_s: 5 } });
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
