import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { createTokenModule, type TokenModule } from '../../../../src/core/identity/tokens/index.ts';
import type { HttpServer } from '../../../../src/platform/http/create-http-server.ts';
import { createLogger } from '../../../../src/platform/logger.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import { createSystemClock } from '../../../../src/platform/clock.ts';
import { createJwtVerifier } from '../../../../src/core/identity/access/jwt-verifier.ts';
import { testAccess, testHttpServer } from '../../../support/http-access.ts';
import { createTestPglite } from '../../../support/databases.ts';
import { memoryClients, newKek } from './support.ts';

const CLIENT = { clientId: 'svc-a', secret: 's3cret:with%chars', tenant: 'acme', scopes: ['models:read', 'models:write'] };
const basic = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('the token endpoint and discovery routes, over HTTP', () => {
  let db: Database;
  let app: HttpServer;
  let base = '';
  let module: TokenModule;
  const clients = memoryClients([CLIENT, { clientId: 'fresh', secret: 'x', tenant: 'acme', scopes: [] }]);

  beforeAll(async () => {
    db = await createTestPglite();
    module = createTokenModule({
      db,
      clock: createSystemClock(),
      issuer: () => base,
      audience: 'blocks',
      accessTokenTtlMs: 600_000,
      keyEncryptionKey: newKek(),
      clients,
    });
    app = await testHttpServer((await testAccess()).access, {
      version: '1',
      logger: createLogger({ level: 'silent', service: 'test', version: '1' }),
    });
    await app.register(module.routes);
    app.post('/echo', { config: { scope: 'public' } }, async (request) => request.body ?? null);
    base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  const tokenRequest = (params: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(params),
    });

  it('issues a token to a client authenticated by HTTP Basic, which verifies through discovery and the JWKS route', async () => {
    const response = await tokenRequest(
      { grant_type: 'client_credentials', scope: 'models:read' },
      { authorization: basic(CLIENT.clientId, CLIENT.secret) },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { access_token: string; token_type: string; expires_in: number; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 600, scope: 'models:read' });
    const { kid } = decodeProtectedHeader(body.access_token);
    const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string; d?: string }> };
    expect(jwks.keys.map((key) => key.kid)).toContain(kid);
    expect(jwks.keys.every((key) => key.d === undefined)).toBe(true);

    const verifier = createJwtVerifier({ issuers: [{ issuer: base, audience: 'blocks', discovery: true }] });
    const verified = await verifier.verify(body.access_token);
    expect(verified).toMatchObject({ subject: CLIENT.clientId, issuer: base, tenant: 'acme', scopes: ['models:read'] });
  });

  it('accepts client_secret_post and grants all of the client scopes when none is asked for', async () => {
    const response = await tokenRequest({ grant_type: 'client_credentials', client_id: CLIENT.clientId, client_secret: CLIENT.secret });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { scope: string }).scope).toBe('models:read models:write');
  });

  it('gives a new client with no scopes a token with no scopes (least privilege)', async () => {
    const response = await tokenRequest({ grant_type: 'client_credentials' }, { authorization: basic('fresh', 'x') });
    expect(((await response.json()) as { scope: string }).scope).toBe('');
  });

  it('refuses a wrong secret, an unknown client and missing credentials with invalid_client 401', async () => {
    const attempts: Array<Record<string, string>> = [
      { authorization: basic(CLIENT.clientId, 'wrong') },
      { authorization: basic('nobody', 'x') },
      {},
    ];
    for (const headers of attempts) {
      const response = await tokenRequest({ grant_type: 'client_credentials' }, headers);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm="blocks"/);
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(await response.json()).toMatchObject({ code: 'OAUTH_INVALID_CLIENT', error: 'invalid_client' });
    }
  });

  it('refuses a scope the client does not hold with invalid_scope 400, naming it', async () => {
    const response = await tokenRequest(
      { grant_type: 'client_credentials', scope: 'models:read identity:admin' },
      { authorization: basic(CLIENT.clientId, CLIENT.secret) },
    );
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; error: string; detail: string };
    expect(body).toMatchObject({ code: 'OAUTH_INVALID_SCOPE', error: 'invalid_scope' });
    expect(body.detail).toContain('identity:admin');
    expect(body.detail).not.toContain('models:read');
  });

  it('refuses other grant types with unsupported_grant_type 400, and a missing one with invalid_request', async () => {
    const auth = { authorization: basic(CLIENT.clientId, CLIENT.secret) };
    const password = await tokenRequest({ grant_type: 'password', username: 'u', password: 'p' }, auth);
    expect(password.status).toBe(400);
    expect(await password.json()).toMatchObject({ code: 'OAUTH_UNSUPPORTED_GRANT_TYPE', error: 'unsupported_grant_type' });
    const missing = await tokenRequest({}, auth);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ code: 'OAUTH_INVALID_REQUEST', error: 'invalid_request' });
  });

  it('refuses a repeated parameter and two authentication methods at once with invalid_request', async () => {
    const repeated = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(CLIENT.clientId, CLIENT.secret) },
      body: 'grant_type=client_credentials&scope=models:read&scope=models:write',
    });
    expect(repeated.status).toBe(400);
    expect(await repeated.json()).toMatchObject({ code: 'OAUTH_INVALID_REQUEST', detail: 'Parameter scope is given more than once' });
    const both = await tokenRequest(
      { grant_type: 'client_credentials', client_id: CLIENT.clientId, client_secret: CLIENT.secret },
      { authorization: basic(CLIENT.clientId, CLIENT.secret) },
    );
    expect(both.status).toBe(400);
    expect(await both.json()).toMatchObject({ code: 'OAUTH_INVALID_REQUEST' });
  });

  it('answers malformed parameters with invalid_request in problem+json, before looking at the client', async () => {
    const auth = { authorization: basic(CLIENT.clientId, CLIENT.secret) };
    const cases: Array<Record<string, string>> = [
      { grant_type: 'client_credentials', scope: 'x'.repeat(2001) },
      { grant_type: 'password', username: 'a@example.com', password: 'p'.repeat(1025) },
      { grant_type: 'refresh_token', refresh_token: 'r'.repeat(201) },
      { grant_type: 'client_credentials', unknown_parameter: 'u'.repeat(2001) },
    ];
    const before = clients.calls;
    for (const params of cases) {
      const response = await tokenRequest(params, auth);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.json()).toMatchObject({ code: 'OAUTH_INVALID_REQUEST', error: 'invalid_request' });
    }
    expect(clients.calls).toBe(before);
    const noBody = await fetch(`${base}/oauth/token`, { method: 'POST', headers: auth });
    expect(noBody.status).toBe(400);
    expect(await noBody.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('refresh_token grant: a missing token is invalid_request; a made-up, malformed or empty one is invalid_grant', async () => {
    const auth = { authorization: basic(CLIENT.clientId, CLIENT.secret) };
    const missing = await tokenRequest({ grant_type: 'refresh_token' }, auth);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ code: 'OAUTH_INVALID_REQUEST', error: 'invalid_request' });
    for (const refresh_token of [`brt_${'A'.repeat(43)}`, 'not-a-token', '', `brt_${'A'.repeat(42)}'`]) {
      const response = await tokenRequest({ grant_type: 'refresh_token', refresh_token }, auth);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: 'OAUTH_INVALID_GRANT', error: 'invalid_grant' });
    }
    // The client is authenticated first: a bad secret is invalid_client whatever the token.
    const wrongClient = await tokenRequest(
      { grant_type: 'refresh_token', refresh_token: 'x' },
      { authorization: basic(CLIENT.clientId, 'no') },
    );
    expect(wrongClient.status).toBe(401);
  });

  it('password grant is unsupported unless configured, and says which grants are', async () => {
    const response = await tokenRequest(
      { grant_type: 'password', username: 'a@example.com', password: 'correct horse battery' },
      { authorization: basic(CLIENT.clientId, CLIENT.secret) },
    );
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; detail: string };
    expect(body.error).toBe('unsupported_grant_type');
    expect(body.detail).toMatch(/use one of client_credentials, refresh_token$/);
  });

  it('refuses a JSON body (415), and its form parser stays inside the plugin', async () => {
    const json = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic(CLIENT.clientId, CLIENT.secret) },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect(json.status).toBe(415);
    const formElsewhere = await fetch(`${base}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(formElsewhere.status).toBe(415);
    const jsonElsewhere = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await jsonElsewhere.json()).toEqual({ a: 1 });
  });

  it('publishes discovery metadata naming its token endpoint and JWKS', async () => {
    const response = await fetch(`${base}/.well-known/openid-configuration`);
    expect(await response.json()).toMatchObject({
      issuer: base,
      token_endpoint: `${base}/oauth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      grant_types_supported: ['client_credentials', 'refresh_token'],
    });
  });

  it('keeps a token signed before rotation verifiable over HTTP, and signs new ones with the new kid', async () => {
    const auth = { authorization: basic(CLIENT.clientId, CLIENT.secret) };
    const before = ((await (await tokenRequest({ grant_type: 'client_credentials' }, auth)).json()) as { access_token: string })
      .access_token;
    const verifier = createJwtVerifier({ issuers: [{ issuer: base, audience: 'blocks', discovery: true }], jwksCooldownMs: 0 });
    await verifier.verify(before);
    const { kid } = await module.keys.rotateKeys();
    const after = ((await (await tokenRequest({ grant_type: 'client_credentials' }, auth)).json()) as { access_token: string })
      .access_token;
    expect(decodeProtectedHeader(after).kid).toBe(kid);
    await expect(verifier.verify(after)).resolves.toMatchObject({ subject: CLIENT.clientId });
    await expect(verifier.verify(before)).resolves.toMatchObject({ subject: CLIENT.clientId });
  });
});
