import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { InjectOptions } from 'fastify';
import { createIdentityAuthenticator } from '../../../src/core/identity/index.ts';
import { createSystemClock } from '../../../src/platform/clock.ts';
import {
  createAccess,
  type AccessDenial,
  type ContextPolicy,
  type Credential,
  type RequestContext,
} from '../../../src/platform/http/access.ts';
import { ANONYMOUS } from '../../../src/platform/http/caller.ts';
import { testHttpServer } from '../../support/http-access.ts';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import { createMemoryRateLimiter } from '../../../src/platform/rate-limit/memory.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';

const ISSUER = 'https://issuer.access-test.blocks';
const AUDIENCE = 'blocks';
const KID = 'access-test';
/** The one API key the authenticator knows (identity's own tests cover real keys in the database). */
const API_KEY = 'bk_acme_reader_0123456789abcdef';
const API_KEY_ID = '6f1b7c1e-3a52-4f3e-9a43-1c2d3e4f5a6b';
const CHALLENGE = 'Bearer realm="blocks"';
const INVALID_TOKEN_CHALLENGE = 'Bearer realm="blocks", error="invalid_token"';

let trusted: CryptoKey;
let stranger: CryptoKey;
let jwk: JWK;
beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  trusted = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  stranger = (await generateKeyPair('ES256')).privateKey;
});

interface TokenOptions {
  readonly tenant?: string | undefined;
  readonly scopes?: readonly string[];
  readonly subject?: string;
  readonly clientId?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Seconds from now; negative for a token that has expired. */
  readonly expiresIn?: number;
  readonly key?: CryptoKey;
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

/** An ES256 access token as Blocks' own issuer would sign it, or spoiled in the one way a test names. */
async function token(options: TokenOptions = {}): Promise<string> {
  const expiresIn = options.expiresIn ?? 300;
  const claims: Record<string, unknown> = { scope: (options.scopes ?? []).join(' ') };
  if (!('tenant' in options) || options.tenant !== undefined) claims.tenant = options.tenant ?? 'acme';
  if (options.clientId !== undefined) claims.client_id = options.clientId;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'at+jwt' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject(options.subject ?? 'client-acme')
    .setIssuedAt(nowSec() + Math.min(0, expiresIn) - 60)
    .setExpirationTime(nowSec() + expiresIn)
    .sign(options.key ?? trusted);
}

const bearer = async (options: TokenOptions = {}): Promise<Record<string, string>> => ({
  authorization: `Bearer ${await token(options)}`,
});

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** What `alg: none` looks like: a valid payload, no signature. */
const unsignedToken = (): string =>
  `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: ISSUER, aud: AUDIENCE, sub: 'x', tenant: 'acme', scope: 'things:read', exp: nowSec() + 300 })}.`;

interface Served {
  readonly app: HttpServer;
  readonly denials: AccessDenial[];
  /** Every credential the authenticator was asked about. */
  readonly seen: Credential[];
  /** `/metrics` as text (with a credential holding `metrics:read`, which public metrics ignore). */
  readonly metricsText: () => Promise<string>;
}

interface ServeOptions {
  readonly anonymous?: { metrics: boolean; docs: boolean };
  readonly failedAttempts?: { limit: number; periodMs: number };
  readonly contextPolicy?: ContextPolicy;
  /** More routes, registered before the server is ready. */
  readonly routes?: (app: HttpServer) => void;
}

const apps: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/**
 * A server with the production access hooks (createAccess and identity's authenticator, trusting
 * one issuer whose key this file holds) and one route of each kind of scope.
 */
async function serve(options: ServeOptions = {}): Promise<Served> {
  const metrics = createMetrics();
  const denials: AccessDenial[] = [];
  const seen: Credential[] = [];
  const identity = createIdentityAuthenticator({
    verifyApiKey: async (raw) => (raw === API_KEY ? { tenant: 'acme', keyId: API_KEY_ID, scopes: ['things:read'] } : null),
    ownIssuer: () => ISSUER,
    audience: AUDIENCE,
    ownKeys: async () => ({ keys: [jwk] }),
    externalIssuers: [],
    clockSkewSec: 30,
  });
  const access = createAccess({
    authenticator: {
      authenticate: (credential) => {
        seen.push(credential);
        return identity.authenticate(credential);
      },
    },
    ...(options.contextPolicy ? { contextPolicy: options.contextPolicy } : {}),
    onDenied: (denial) => denials.push(denial),
    limiter: createMemoryRateLimiter(),
    failedAttempts: options.failedAttempts ?? { limit: 1000, periodMs: 60_000 },
    metrics,
    clock: createSystemClock(),
  });
  const app = await testHttpServer(access, {
    version: '1.0.0',
    logger: createLogger({ level: 'silent', service: 'test', version: '1.0.0' }),
    metrics,
    anonymous: options.anonymous ?? { metrics: true, docs: true },
  });
  apps.push(app);
  app.get('/open', { config: { scope: 'public' } }, async (request) => request.caller);
  app.get('/things', { config: { scope: 'things:read' } }, async (request) => request.caller);
  // As /oauth/token: the route authenticates the client itself, from its body.
  app.post('/oauth/token', { config: { scope: 'client' } }, async (request, reply) => {
    const secret = (request.body as { client_secret?: unknown } | undefined)?.client_secret;
    if (secret !== 'right') return reply.code(401).send({ error: 'invalid_client' });
    return request.caller;
  });
  app.get('/pass/:name', { config: { scope: 'upstream' } }, async (request) => request.caller);
  options.routes?.(app);
  await app.ready();
  const metricsAuth = await bearer({ scopes: ['metrics:read'] });
  return {
    app,
    denials,
    seen,
    metricsText: async () => (await app.inject({ url: '/metrics', headers: metricsAuth })).body,
  };
}

/** The value of one sample of a counter, 0 when it has none (prom-client prints no line before the first inc). */
function sample(text: string, name: string, labels = ''): number {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

const FAILURES = 'blocks_failed_authentication_attempts_total';
const DENIED = 'blocks_access_denied_total';
const THROTTLED = 'blocks_authentication_throttled_total';

describe('public routes', () => {
  it('answer anonymously and never look at credentials, good, bad or ambiguous', async () => {
    const { app, seen, denials, metricsText } = await serve();
    const valid = await bearer({ scopes: ['things:read'] });
    for (const headers of [
      {},
      valid,
      { authorization: 'Bearer not-a-key' },
      { authorization: 'Basic dXNlcjpwYXNz' },
      { ...valid, 'x-api-key': API_KEY },
      { 'x-api-key': API_KEY, 'x-blocks-tenant': 'someone-else' },
    ]) {
      const res = await app.inject({ url: '/open', headers });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual(ANONYMOUS);
      expect((await app.inject({ url: '/health/live', headers })).statusCode).toBe(200);
    }
    expect(seen).toEqual([]);
    expect(denials).toEqual([]);
    expect(await metricsText()).not.toContain(`${FAILURES}{`);
  });
});

describe('identity: who the credential speaks for', () => {
  it('refuses a request without a credential: 401 AUTHENTICATION_REQUIRED with a Bearer challenge, as a problem', async () => {
    const { app, seen } = await serve();
    for (const headers of [{}, { 'x-api-key': '' }]) {
      const res = await app.inject({ url: '/things', headers: { ...headers, 'x-correlation-id': 'corr-401' } });
      expect(res.statusCode).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe(CHALLENGE);
      expect(res.headers['x-correlation-id']).toBe('corr-401');
      expect(res.json()).toMatchObject({ status: 401, code: 'AUTHENTICATION_REQUIRED', correlation_id: 'corr-401' });
    }
    expect(seen).toEqual([]);
  });

  it('refuses two credentials at once, even two valid ones, without looking at either', async () => {
    const { app, seen } = await serve();
    const res = await app.inject({ url: '/things', headers: { ...(await bearer({ scopes: ['things:read'] })), 'x-api-key': API_KEY } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe(CHALLENGE);
    expect(res.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(seen).toEqual([]);
  });

  it('refuses another scheme than Bearer: 401 INVALID_CREDENTIALS', async () => {
    const { app } = await serve();
    for (const authorization of ['Basic dXNlcjpwYXNz', `Digest ${API_KEY}`, 'Bearer']) {
      const res = await app.inject({ url: '/things', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.headers['www-authenticate']).toBe(CHALLENGE);
      expect(res.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    }
  });

  it('takes an API key from x-api-key or as a bearer credential, and refuses an unknown one', async () => {
    const { app, seen } = await serve();
    for (const headers of [{ 'x-api-key': API_KEY }, { authorization: `Bearer ${API_KEY}` }]) {
      const res = await app.inject({ url: '/things', headers });
      expect(res.statusCode).toBe(200);
      // The key's id, never the key itself.
      expect(res.json()).toEqual({
        tenant: 'acme',
        kind: 'api_key',
        subject: API_KEY_ID,
        apiKeyId: API_KEY_ID,
        clientId: null,
        scopes: ['things:read'],
      });
    }
    expect(seen).toEqual([
      { kind: 'api_key', value: API_KEY },
      { kind: 'api_key', value: API_KEY },
    ]);
    for (const headers of [{ 'x-api-key': 'bk_unknown' }, { authorization: 'Bearer bk_unknown' }]) {
      const res = await app.inject({ url: '/things', headers });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toBe(CHALLENGE);
      expect(res.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    }
  });

  it.each<[string, () => Promise<string>, RegExp]>([
    ['expired', () => token({ scopes: ['things:read'], expiresIn: -600 }), /expired/],
    ['signed by another key', () => token({ scopes: ['things:read'], key: stranger }), /signature/],
    ['meant for another audience', () => token({ scopes: ['things:read'], audience: 'someone-else' }), /audience/],
    ['unsigned (alg: none)', async () => unsignedToken(), /Algorithm none/],
    ['from an issuer not trusted', () => token({ scopes: ['things:read'], issuer: 'https://evil.example' }), /issuer/],
    ['naming no tenant', () => token({ scopes: ['things:read'], tenant: undefined }), /tenant/],
  ])('refuses a token %s: 401 INVALID_TOKEN with error="invalid_token"', async (_name, make, why) => {
    const { app } = await serve();
    const res = await app.inject({ url: '/things', headers: { authorization: `Bearer ${await make()}` } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN_CHALLENGE);
    const problem = res.json<{ code: string; detail: string }>();
    expect(problem.code).toBe('INVALID_TOKEN');
    expect(problem.detail).toMatch(why);
  });

  it('sets request.caller from the verified token: tenant, subject, client and scopes', async () => {
    const { app } = await serve();
    const headers = await bearer({ tenant: 'globex', subject: 'svc-7', clientId: 'cli-7', scopes: ['things:read', 'extra:scope'] });
    const res = await app.inject({ url: '/things', headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      tenant: 'globex',
      kind: 'token',
      subject: 'svc-7',
      apiKeyId: null,
      clientId: 'cli-7',
      scopes: ['things:read', 'extra:scope'],
    });
  });
});

describe('resource: the route scope', () => {
  it('guards the HEAD route fastify derives from a GET like the GET itself', async () => {
    const { app } = await serve();
    expect((await app.inject({ method: 'HEAD', url: '/things' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'HEAD', url: '/things', headers: await bearer({ scopes: ['other'] }) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'HEAD', url: '/things', headers: await bearer({ scopes: ['things:read'] }) })).statusCode).toBe(200);
  });

  it('refuses a valid token lacking the scope: 403 INSUFFICIENT_SCOPE naming it', async () => {
    const { app } = await serve();
    const res = await app.inject({ url: '/things', headers: await bearer({ scopes: ['things:write', 'metrics:read'] }) });
    expect(res.statusCode).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="blocks", error="insufficient_scope", scope="things:read"');
    expect(res.json()).toMatchObject({ status: 403, code: 'INSUFFICIENT_SCOPE', scope: 'things:read' });
    expect((await app.inject({ url: '/things', headers: await bearer({ scopes: ['things:read'] }) })).statusCode).toBe(200);
  });

  it('lets any authenticated caller through an upstream route, and no one else', async () => {
    const { app } = await serve();
    const res = await app.inject({ url: '/pass/x', headers: await bearer({ tenant: 'acme', scopes: [] }) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tenant: 'acme', kind: 'token', scopes: [] });
    expect((await app.inject({ url: '/pass/x', headers: { 'x-api-key': API_KEY } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/pass/x' })).statusCode).toBe(401);
    const bad = await app.inject({ url: '/pass/x', headers: await bearer({ key: stranger }) });
    expect([bad.statusCode, bad.json<{ code: string }>().code]).toEqual([401, 'INVALID_TOKEN']);
  });

  it('leaves client routes anonymous, and counts their 401 answers as failed attempts', async () => {
    const { app, seen, denials, metricsText } = await serve();
    const post = (secret: string) =>
      app.inject({
        method: 'POST',
        url: '/oauth/token',
        headers: { 'content-type': 'application/json', 'x-correlation-id': `corr-${secret}` },
        payload: { client_secret: secret },
      });
    const accepted = await post('right');
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toEqual(ANONYMOUS);
    // A bearer credential on the request is not what this route authenticates.
    const withToken = await app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { ...(await bearer({ key: stranger })), 'content-type': 'application/json' },
      payload: { client_secret: 'right' },
    });
    expect(withToken.statusCode).toBe(200);
    expect(seen).toEqual([]);
    expect(sample(await metricsText(), FAILURES, 'reason="invalid_client"')).toBe(0);

    expect((await post('wrong')).statusCode).toBe(401);
    expect((await post('wrong')).statusCode).toBe(401);
    expect(sample(await metricsText(), FAILURES, 'reason="invalid_client"')).toBe(2);
    expect(denials).toEqual([
      expect.objectContaining({ reason: 'invalid_client', status: 401, route: '/oauth/token', correlationId: 'corr-wrong' }),
      expect.objectContaining({ reason: 'invalid_client', status: 401 }),
    ]);
  });
});

describe('context: tenant and the tenant rules', () => {
  it('refuses an x-blocks-tenant naming another tenant than the credential: 403 TENANT_MISMATCH; the same one passes', async () => {
    const { app, denials } = await serve();
    const headers = await bearer({ tenant: 'acme', scopes: ['things:read'] });
    const other = await app.inject({ url: '/things', headers: { ...headers, 'x-blocks-tenant': 'globex' } });
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'TENANT_MISMATCH' });
    expect(denials).toEqual([expect.objectContaining({ reason: 'tenant_mismatch', status: 403, tenant: 'acme', subject: 'client-acme' })]);
    const same = await app.inject({ url: '/things', headers: { ...headers, 'x-blocks-tenant': 'acme' } });
    expect(same.statusCode).toBe(200);
    expect(same.json()).toMatchObject({ tenant: 'acme' });
    const keyed = await app.inject({ url: '/things', headers: { 'x-api-key': API_KEY, 'x-blocks-tenant': 'globex' } });
    expect(keyed.json()).toMatchObject({ code: 'TENANT_MISMATCH' });
  });

  it('refuses what the context policy refuses: 403 ACCESS_DENIED with its reason, after giving it the request context', async () => {
    const contexts: Array<{ tenant: string; context: RequestContext }> = [];
    const { app, denials } = await serve({
      contextPolicy: {
        check: (caller, context) => {
          contexts.push({ tenant: caller.tenant, context });
          return caller.tenant === 'night' ? 'outside_hours' : null;
        },
      },
    });
    const before = Date.now();
    const refused = await app.inject({
      url: '/things',
      remoteAddress: '198.51.100.4',
      headers: await bearer({ tenant: 'night', scopes: ['things:read'] }),
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'ACCESS_DENIED', reason: 'outside_hours' });
    expect(refused.json<{ detail: string }>().detail).toContain('outside_hours');
    expect(denials).toEqual([expect.objectContaining({ reason: 'outside_hours', status: 403, tenant: 'night', ip: '198.51.100.4' })]);

    const allowed = await app.inject({
      url: '/things',
      remoteAddress: '198.51.100.5',
      headers: { ...(await bearer({ tenant: 'acme', scopes: ['things:read'] })), 'x-blocks-device': 'laptop-1' },
    });
    expect(allowed.statusCode).toBe(200);
    expect(contexts.map((c) => c.tenant)).toEqual(['night', 'acme']);
    const seen = contexts[1]?.context;
    expect(seen).toMatchObject({ ip: '198.51.100.5', deviceId: 'laptop-1', certificateFingerprint: undefined });
    expect(seen?.now).toBeGreaterThanOrEqual(before);
    expect(seen?.now).toBeLessThanOrEqual(Date.now());
    // Public routes are not the tenant's: its rules are not asked.
    await app.inject({ url: '/open', headers: await bearer({ tenant: 'night' }) });
    expect(contexts).toHaveLength(2);
  });
});

describe('failed authentications', () => {
  it('throttle the address past failedAttempts.limit: 429 AUTHENTICATION_THROTTLED with Retry-After, public routes still answer', async () => {
    const { app, denials, metricsText } = await serve({ failedAttempts: { limit: 3, periodMs: 60_000 } });
    const from = (ip: string, options: Omit<InjectOptions, 'remoteAddress'> = {}) => app.inject({ ...options, remoteAddress: ip });
    const attacker = '203.0.113.9';
    const valid = await bearer({ scopes: ['things:read'] });
    expect((await from(attacker, { url: '/things', headers: { 'x-api-key': 'bk_guess_1' } })).statusCode).toBe(401);
    expect((await from(attacker, { url: '/things', headers: await bearer({ key: stranger }) })).statusCode).toBe(401);
    expect((await from(attacker, { url: '/things' })).statusCode).toBe(401);

    const throttled = await from(attacker, { url: '/things', headers: valid });
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json()).toMatchObject({ status: 429, code: 'AUTHENTICATION_THROTTLED' });
    const retryAfter = Number(throttled.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await from(attacker, { method: 'POST', url: '/oauth/token', payload: { client_secret: 'right' } })).statusCode).toBe(429);

    expect((await from(attacker, { url: '/health/live' })).statusCode).toBe(200);
    expect((await from(attacker, { url: '/open' })).statusCode).toBe(200);
    // Another address is not the attacker.
    expect((await from('203.0.113.10', { url: '/things', headers: valid })).statusCode).toBe(200);

    const text = await metricsText();
    expect(sample(text, THROTTLED)).toBe(2);
    expect(denials.filter((d) => d.reason === 'throttled')).toEqual([
      expect.objectContaining({ status: 429, ip: attacker, route: '/things', tenant: null }),
      expect.objectContaining({ status: 429, ip: attacker, route: '/oauth/token' }),
    ]);
  });

  it('are counted when they start: of 12 guesses at once with a burst of 3, 3 are checked and 9 refused unchecked', async () => {
    const { app, seen } = await serve({ failedAttempts: { limit: 3, periodMs: 60_000 } });
    const guesses = await Promise.all(
      Array.from({ length: 12 }, async (_, i) =>
        app.inject({ url: '/things', remoteAddress: '203.0.113.20', headers: { 'x-api-key': `bk_guess_${i}` } }),
      ),
    );
    expect(guesses.map((answer) => answer.statusCode).sort()).toEqual([...Array(3).fill(401), ...Array(9).fill(429)]);
    expect(seen).toHaveLength(3);
    const tokens = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        app.inject({ method: 'POST', url: '/oauth/token', remoteAddress: '203.0.113.21', payload: { client_secret: `wrong-${i}` } }),
      ),
    );
    expect(tokens.map((answer) => answer.statusCode).sort()).toEqual([...Array(3).fill(401), ...Array(9).fill(429)]);
  });

  it('check a new credential once for the requests sending it at once, give its attempt back, and reserve none for it after', async () => {
    const { app, seen } = await serve({ failedAttempts: { limit: 1, periodMs: 60_000 } });
    const valid = await bearer({ scopes: ['things:read'] });
    const at = (ip: string) => app.inject({ url: '/things', remoteAddress: ip, headers: valid });
    const first = await Promise.all(Array.from({ length: 10 }, () => at('203.0.113.30')));
    expect(first.map((answer) => answer.statusCode)).toEqual(Array(10).fill(200));
    expect(seen).toHaveLength(1);
    // Its attempt was given back: the one failure the allowance holds is still there, and blocks after.
    expect((await app.inject({ url: '/things', remoteAddress: '203.0.113.30', headers: { 'x-api-key': 'bk_guess' } })).statusCode).toBe(
      401,
    );
    expect((await app.inject({ url: '/things', remoteAddress: '203.0.113.30', headers: { 'x-api-key': 'bk_other' } })).statusCode).toBe(
      429,
    );
    // Known now, the token is checked straight away on each request, from any address: no attempt reserved, no shared check.
    const known = await Promise.all(Array.from({ length: 20 }, () => at('203.0.113.31')));
    expect(known.map((answer) => answer.statusCode)).toEqual(Array(20).fill(200));
    expect(seen).toHaveLength(2 + 20);
  });

  it('are counted by reason, and refusals after authentication by theirs, on /metrics', async () => {
    const { app, metricsText } = await serve();
    const get = (headers: Record<string, string> = {}) => app.inject({ url: '/things', headers });
    await get();
    await get();
    await get({ ...(await bearer()), 'x-api-key': API_KEY });
    await get({ 'x-api-key': 'bk_unknown' });
    await get({ authorization: 'Basic dXNlcjpwYXNz' });
    await get(await bearer({ scopes: ['things:read'], expiresIn: -600 }));
    await get(await bearer({ scopes: ['other'] }));
    await get({ ...(await bearer({ scopes: ['things:read'] })), 'x-blocks-tenant': 'globex' });
    await get(await bearer({ scopes: ['things:read'] }));
    const text = await metricsText();
    expect(sample(text, FAILURES, 'reason="missing"')).toBe(2);
    expect(sample(text, FAILURES, 'reason="ambiguous"')).toBe(1);
    expect(sample(text, FAILURES, 'reason="invalid_key"')).toBe(2);
    expect(sample(text, FAILURES, 'reason="invalid_token"')).toBe(1);
    expect(sample(text, DENIED, 'reason="insufficient_scope"')).toBe(1);
    expect(sample(text, DENIED, 'reason="tenant_mismatch"')).toBe(1);
    expect(sample(text, THROTTLED)).toBe(0);
  });

  it('reach the audit callback without the credential', async () => {
    const { app, denials } = await serve();
    const expired = await token({ scopes: ['things:read'], expiresIn: -600 });
    const forged = await token({ scopes: ['things:read'], key: stranger });
    const lacking = await token({ scopes: ['other'] });
    const secrets = [expired, forged, lacking, 'bk_secret_guess_42', 'dXNlcjpwYXNzd29yZA', API_KEY];
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await app.inject({ url: '/things', headers: { authorization: `Bearer ${expired}`, 'x-correlation-id': 'corr-audit', traceparent } });
    await app.inject({ url: '/things', headers: { authorization: `Bearer ${forged}` } });
    await app.inject({ url: '/things', headers: { authorization: `Bearer ${lacking}` } });
    await app.inject({ url: '/things?api_key=bk_secret_guess_42', headers: { 'x-api-key': 'bk_secret_guess_42' } });
    await app.inject({ url: '/things', headers: { authorization: 'Basic dXNlcjpwYXNzd29yZA' } });
    await app.inject({ url: '/things', headers: { 'x-api-key': API_KEY, 'x-blocks-tenant': 'globex' } });
    expect(denials.map((d) => d.reason)).toEqual([
      'invalid_token',
      'invalid_token',
      'insufficient_scope',
      'invalid_key',
      'invalid_key',
      'tenant_mismatch',
    ]);
    expect(denials[0]).toEqual({
      reason: 'invalid_token',
      status: 401,
      tenant: null,
      subject: null,
      ip: '127.0.0.1',
      method: 'GET',
      route: '/things',
      correlationId: 'corr-audit',
      traceparent: expect.stringMatching(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/),
    });
    expect(denials[5]).toMatchObject({ tenant: 'acme', subject: API_KEY_ID });
    const written = JSON.stringify(denials);
    for (const secret of secrets) {
      expect(written).not.toContain(secret);
      // Nor any part of a token (its signature is what would let it be replayed).
      for (const part of secret.split('.')) if (part.length > 16) expect(written).not.toContain(part);
    }
  });
});

describe('metrics and docs', () => {
  it('answer anonymously by default', async () => {
    const { app } = await serve();
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/docs/json' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/docs/' })).statusCode).toBe(200);
  });

  it('need metrics:read and docs:read when anonymous access is turned off; health stays open', async () => {
    const { app } = await serve({ anonymous: { metrics: false, docs: false } });
    for (const [url, scope] of [
      ['/metrics', 'metrics:read'],
      ['/docs/json', 'docs:read'],
      ['/docs/', 'docs:read'],
    ] as const) {
      const anonymous = await app.inject({ url });
      expect([url, anonymous.statusCode, anonymous.json<{ code: string }>().code]).toEqual([url, 401, 'AUTHENTICATION_REQUIRED']);
      const lacking = await app.inject({ url, headers: await bearer({ scopes: ['things:read'] }) });
      expect([url, lacking.statusCode]).toEqual([url, 403]);
      expect(lacking.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope });
      expect((await app.inject({ url, headers: await bearer({ scopes: [scope] }) })).statusCode).toBe(200);
    }
    expect((await app.inject({ url: '/metrics', headers: await bearer({ scopes: ['metrics:read'] }) })).body).toContain(
      'http_requests_total',
    );
    for (const url of ['/health', '/health/live', '/health/ready']) expect((await app.inject({ url })).statusCode).toBe(200);
  });

  it('open the documentation only: a route that merely starts like /docs keeps the scope it declares', async () => {
    const { app } = await serve({
      routes: (server) => {
        server.get('/docsearch', { config: { scope: 'things:read' } }, async () => ({ ok: true }));
        server.get('/docs-admin/keys', { config: { scope: 'things:read' } }, async () => ({ ok: true }));
      },
    });
    for (const url of ['/docsearch', '/docs-admin/keys']) {
      expect([url, (await app.inject({ url })).statusCode]).toEqual([url, 401]);
      expect((await app.inject({ url, headers: await bearer({ scopes: ['things:read'] }) })).statusCode).toBe(200);
    }
  });
});

describe('the OpenAPI document', () => {
  type Operation = { security?: unknown };
  type Document = { components: { securitySchemes: Record<string, { type: string }> }; paths: Record<string, Record<string, Operation>> };
  const securityOf = (doc: Document, path: string, method: string): unknown => doc.paths[path]?.[method]?.security;
  const needing = (scope: string) => [{ bearer: [scope] }, { apiKey: [scope] }, { oauth2: [scope] }];

  it("lists the security schemes and each operation's scope, from the route config", async () => {
    const { app } = await serve();
    const doc = (await app.inject({ url: '/docs/json' })).json<Document>();
    expect(doc.components.securitySchemes).toMatchObject({
      bearer: { type: 'http', scheme: 'bearer' },
      apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      oauth2: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/oauth/token' } } },
    });
    expect(securityOf(doc, '/things', 'get')).toEqual(needing('things:read'));
    expect(securityOf(doc, '/pass/{name}', 'get')).toEqual([{ bearer: [] }, { apiKey: [] }, { oauth2: [] }]);
    expect(securityOf(doc, '/open', 'get')).toEqual([]);
    expect(securityOf(doc, '/oauth/token', 'post')).toEqual([]);
    expect(securityOf(doc, '/metrics', 'get')).toEqual([]);
    for (const path of ['/health', '/health/live', '/health/ready']) expect(securityOf(doc, path, 'get')).toEqual([]);
  });

  it('says /metrics needs metrics:read when it is not anonymous', async () => {
    const { app } = await serve({ anonymous: { metrics: false, docs: false } });
    const doc = (await app.inject({ url: '/docs/json', headers: await bearer({ scopes: ['docs:read'] }) })).json<Document>();
    expect(securityOf(doc, '/metrics', 'get')).toEqual(needing('metrics:read'));
    expect(securityOf(doc, '/health', 'get')).toEqual([]);
  });
});
