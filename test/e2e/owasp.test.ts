import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';

import type { RouteInventoryEntry } from '../../src/platform/http/create-http-server.ts';
import type { Role, RunningBlocks } from '../../src/start.ts';
import { startTestBlocks, testConfig } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { parseExposition, seriesOf, type Sample } from '../support/prometheus.ts';
import { sendText, startHostileProvider, type HostileProvider } from '../support/hostile-provider.ts';
import { scopes as SCOPES } from '../support/registry.ts';

// The OWASP API Security Top 10 (2023), end to end against a running Blocks (all three services,
// embedded). Each test fails if the protection it names were taken away. What needs a production
// configuration (TLS, a tight failed-authentication throttle, a broken database) is in
// owasp-production.test.ts; what needs providers (SSRF, unsafe consumption, budgets) in
// owasp-third-party.test.ts; tenant isolation across every route in tenant-isolation.test.ts.

const ISSUER = 'https://idp.owasp.test';
const ROLES: readonly Role[] = ['gateway', 'autonomous', 'collaborative'];
/** Route scopes that are not a scope a credential holds (src/platform/http/access.ts). */
const KINDS = new Set(['public', 'client', 'upstream']);

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

let blocks: RunningBlocks;
let creds: TestCredentials;
let idp: HostileProvider;
let signingKey: CryptoKey;
let jwk: JWK;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'owasp-1', alg: 'ES256', use: 'sig' };
  idp = await startHostileProvider(sendText(JSON.stringify({ keys: [jwk] })));
  blocks = await startTestBlocks({
    config: testConfig(
      {},
      {
        auth: {
          // Tests here fail authentication on purpose, all from 127.0.0.1; the throttle has its own test.
          failed_attempts: { limit: 1_000_000, period: 60_000, burst: 1_000_000 },
          external_issuers: [{ issuer: ISSUER, audience: 'blocks', jwks_uri: `${idp.origin}/jwks` }],
          // API5 signs a user in after an attempted takeover of its password.
          password_grant: true,
        },
        // Per caller: only the key of the rate-limit test comes near it.
        rate_limits: { scopes: { 'service:read': { limit: 2, period: 60_000, burst: 2 } } },
      },
    ),
  });
  creds = testCredentials(blocks);
}, 60_000);

afterAll(async () => {
  await blocks?.close();
  await idp?.close();
});

async function call(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; raw?: string; role?: Role } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  } else if (options.raw !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(`${blocks.urls[options.role ?? 'gateway'] as string}${path}`, { method, headers, body });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON (metrics, HEAD): tests that care look at `text`.
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

const as = (tenant: string, scopes?: readonly string[]) => creds.headers(tenant, scopes);

/** A concrete path for a route pattern; the values are well-formed so that only the check under test can refuse. */
const pathOf = (url: string): string =>
  url
    .replace(':scope', 'tenant')
    .replace(':period', 'day')
    .replace(':client_id', `cl_${'0'.repeat(24)}`)
    .replace(/:[A-Za-z_]+/g, randomUUID())
    .replace('*', 'x');

const inventory = (role: Role): RouteInventoryEntry[] => blocks.apps[role]?.routeInventory() ?? [];

async function token(claims: Record<string, unknown>, options: { key?: CryptoKey } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // Claims given override the defaults (no setters: those would override the claims under test).
  return new SignJWT({
    iss: ISSUER,
    aud: 'blocks',
    sub: 'someone',
    iat: now,
    exp: now + 300,
    tenant: 'owasp-jwt',
    scope: 'identity:admin service:read',
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'owasp-1' })
    .sign(options.key ?? signingKey);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('API1 broken object level authorization', () => {
  it("answers tenant B's reads, changes and deletions of tenant A's objects by id with 404, as for ids that do not exist", async () => {
    const a = await as('bola-a');
    const b = await as('bola-b');
    const key = await call('POST', '/api/v1/identity/api-keys', { headers: a, body: { name: 'a-key', scopes: ['ai:route'] } });
    const client = await call('POST', '/api/v1/identity/clients', { headers: a, body: { name: 'a-client', scopes: ['ai:route'] } });
    expect(key.status).toBe(201);
    expect(client.status).toBe(201);
    const keyId = key.body['id'] as string;
    const clientId = client.body['client_id'] as string;

    for (const [method, path, missing] of [
      ['GET', `/api/v1/identity/api-keys/${keyId}`, `/api/v1/identity/api-keys/${randomUUID()}`],
      ['DELETE', `/api/v1/identity/api-keys/${keyId}`, `/api/v1/identity/api-keys/${randomUUID()}`],
      ['GET', `/api/v1/identity/clients/${clientId}`, `/api/v1/identity/clients/cl_${randomBytes(12).toString('hex')}`],
      [
        'POST',
        `/api/v1/identity/clients/${clientId}/rotate-secret`,
        `/api/v1/identity/clients/cl_${randomBytes(12).toString('hex')}/rotate-secret`,
      ],
      ['DELETE', `/api/v1/identity/clients/${clientId}`, `/api/v1/identity/clients/cl_${randomBytes(12).toString('hex')}`],
    ] as const) {
      const theirs = await call(method, path, { headers: b });
      const nobody = await call(method, missing, { headers: b });
      expect(theirs.status, `${method} ${path}`).toBe(404);
      expect(theirs.body['code']).toBe(nobody.body['code']);
    }
    // Nothing changed: A's key still works and its client keeps its secret.
    const stillThere = await call('GET', `/api/v1/identity/api-keys/${keyId}`, { headers: a });
    expect(stillThere.body['revoked_at']).toBeNull();
    const secret = client.body['client_secret'] as string;
    const issued = await fetch(`${blocks.urls.gateway as string}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
    });
    expect(issued.status).toBe(200);
  });

  it("refuses feedback on another tenant's routing decision exactly as on one that does not exist", async () => {
    const decided = await call('POST', '/api/v1/autonomous/ai/route', {
      headers: await as('bola-a'),
      body: { task_type: 'chat', complexity: 'low' },
    });
    expect(decided.status).toBe(200);
    const b = await as('bola-b');
    const theirs = await call('POST', '/api/v1/autonomous/ai/feedback', {
      headers: b,
      body: { decision_id: decided.body['decision_id'], success: false },
    });
    const nobody = await call('POST', '/api/v1/autonomous/ai/feedback', {
      headers: b,
      body: { decision_id: randomUUID(), success: false },
    });
    expect(theirs.status).toBe(404);
    expect(theirs.body['code']).toBe(nobody.body['code']);
  });
});

describe('API2 broken authentication', () => {
  const path = '/api/v1/identity/api-keys';
  const withToken = async (value: string) => call('GET', path, { headers: { authorization: `Bearer ${value}` } });

  it('accepts a token of the trusted issuer: the refusals below are about the token, not the set-up', async () => {
    expect((await withToken(await token({}))).status).toBe(200);
  });

  it('asks for a credential when none is sent (401 with a Bearer challenge)', async () => {
    const answer = await call('GET', path);
    expect(answer.status).toBe(401);
    expect(answer.body['code']).toBe('AUTHENTICATION_REQUIRED');
    expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="blocks"/);
  });

  it('refuses a forged API key, in either header', async () => {
    const forged = `bk_${randomBytes(32).toString('base64url')}`;
    for (const headers of [{ 'x-api-key': forged }, { authorization: `Bearer ${forged}` }] as Record<string, string>[]) {
      const answer = await call('GET', path, { headers });
      expect(answer.status).toBe(401);
      expect(answer.body['code']).toBe('INVALID_CREDENTIALS');
    }
  });

  it('refuses tokens that are forged, expired, not yet valid, for another audience or of an unknown issuer', async () => {
    const { privateKey: stranger } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, string]> = [
      ['signed by another key under the trusted kid', await token({}, { key: stranger })],
      ['expired', await token({ exp: now - 3600, iat: now - 7200 })],
      ['not valid yet', await token({ nbf: now + 3600 })],
      ['for another audience', await token({ aud: 'someone-else' })],
      ['of an unknown issuer', await token({ iss: 'https://evil.example' })],
      [
        'with a tampered payload',
        (await token({})).replace(
          /\.([^.]+)\./,
          `.${b64({ iss: ISSUER, aud: 'blocks', sub: 'x', tenant: 'default', scope: 'tenants:admin', exp: now + 300 })}.`,
        ),
      ],
    ];
    for (const [what, value] of cases) {
      const answer = await withToken(value);
      expect(answer.status, what).toBe(401);
      expect(answer.body['code'], what).toBe('INVALID_TOKEN');
      expect(answer.headers.get('www-authenticate'), what).toMatch(/error="invalid_token"/);
    }
  });

  it('refuses alg:none and an HMAC token keyed with the public key (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: ISSUER, aud: 'blocks', sub: 'x', tenant: 'owasp-jwt', scope: 'identity:admin', iat: now, exp: now + 300 };
    const unsigned = `${b64({ alg: 'none', typ: 'JWT', kid: 'owasp-1' })}.${b64(claims)}.`;
    const header = b64({ alg: 'HS256', typ: 'JWT', kid: 'owasp-1' });
    const payload = b64(claims);
    const confused = `${header}.${payload}.${createHmac('sha256', JSON.stringify(jwk)).update(`${header}.${payload}`).digest('base64url')}`;
    for (const value of [unsigned, confused]) {
      const answer = await withToken(value);
      expect(answer.status).toBe(401);
      expect(answer.body['code']).toBe('INVALID_TOKEN');
    }
  });

  it('refuses a revoked key at once, and an expired one', async () => {
    const admin = await as('authn');
    const made = await call('POST', path, { headers: admin, body: { name: 'short-lived', scopes: ['identity:admin'] } });
    const key = { 'x-api-key': made.body['key'] as string };
    expect((await call('GET', path, { headers: key })).status).toBe(200);
    expect((await call('DELETE', `${path}/${made.body['id'] as string}`, { headers: admin })).status).toBe(200);
    const revoked = await call('GET', path, { headers: key });
    expect(revoked.status).toBe(401);
    expect(revoked.body['code']).toBe('INVALID_CREDENTIALS');

    const expiring = await call('POST', path, {
      headers: admin,
      body: { name: 'expiring', scopes: ['identity:admin'], expires_at: new Date(Date.now() + 1500).toISOString() },
    });
    const soon = { 'x-api-key': expiring.body['key'] as string };
    expect((await call('GET', path, { headers: soon })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect((await call('GET', path, { headers: soon })).status).toBe(401);
  });

  it('refuses two credentials at once rather than pick one', async () => {
    const answer = await call('GET', path, { headers: { ...(await as('authn')), authorization: `Bearer ${await token({})}` } });
    expect(answer.status).toBe(401);
    expect(answer.body['code']).toBe('INVALID_CREDENTIALS');
  });
});

describe('API3 broken object property level authorization', () => {
  it('refuses fields a caller may not set (mass assignment) with 400 naming the field, and writes nothing', async () => {
    const admin = await as('props');
    const cases: Array<[string, string, Record<string, unknown>, string]> = [
      ['POST', '/api/v1/identity/api-keys', { name: 'k', id: randomUUID() }, '/id'],
      ['POST', '/api/v1/identity/api-keys', { name: 'k', tenant: 'default' }, '/tenant'],
      ['POST', '/api/v1/identity/api-keys', { name: 'k', revoked_at: null, last_used_at: null }, '/revoked_at'],
      ['POST', '/api/v1/identity/clients', { name: 'c', client_secret: 'mine' }, '/client_secret'],
      ['POST', '/api/v1/identity/users', { email: 'a@b.example', password: 'long enough password', password_hash: 'x' }, '/password_hash'],
      ['PUT', '/api/v1/autonomous/ai/budgets/tenant/props/day', { limit_usd: 1, spent_usd: 0 }, '/spent_usd'],
      ['POST', '/api/v1/autonomous/ai/feedback', { decision_id: randomUUID(), success: true, tenant: 'default' }, '/tenant'],
      ['POST', '/api/v1/autonomous/ai/route', { task_type: 'chat', complexity: 'low', tenant: 'default' }, '/tenant'],
    ];
    for (const [method, path, body, pointer] of cases) {
      const answer = await call(method, path, { headers: admin, body });
      expect(answer.status, `${method} ${path}`).toBe(400);
      expect(answer.body['code']).toBe('VALIDATION_FAILED');
      expect(answer.body['errors'], `${method} ${path}`).toContainEqual(expect.objectContaining({ pointer }));
    }
    const model = await call('GET', '/api/v1/autonomous/ai/models?limit=1', { headers: admin });
    const first = (model.body['items'] as Record<string, unknown>[])[0] as Record<string, unknown>;
    const { model: id, has_credentials: _h, version: _v, created_at: _c, updated_at: _u, deployments: _d, ...fields } = first;
    const put = await call('PUT', `/api/v1/autonomous/ai/models/${id as string}`, {
      headers: admin,
      body: { ...fields, created_at: '2000-01-01T00:00:00Z' },
    });
    expect(put.status).toBe(400);
    expect(put.body['errors']).toContainEqual(expect.objectContaining({ pointer: '/created_at' }));
    const keys = await call('GET', '/api/v1/identity/api-keys', { headers: admin });
    expect((keys.body['items'] as unknown[]).length).toBe(1); // only the test's own key: nothing was created
  });

  it('never answers a secret, a hash or a credentials reference: the key and client secret only once, at creation', async () => {
    const admin = await as('secrets');
    const key = await call('POST', '/api/v1/identity/api-keys', { headers: admin, body: { name: 'k', scopes: ['ai:route'] } });
    const client = await call('POST', '/api/v1/identity/clients', { headers: admin, body: { name: 'c', scopes: ['ai:route'] } });
    const rotated = await call('POST', `/api/v1/identity/clients/${client.body['client_id'] as string}/rotate-secret`, { headers: admin });
    const user = await call('POST', '/api/v1/identity/users', {
      headers: admin,
      body: { email: 'someone@secrets.example', password: 'a password nobody may see', roles: ['viewer'] },
    });
    expect([key.status, client.status, rotated.status, user.status]).toEqual([201, 201, 200, 201]);
    expect(key.headers.get('cache-control')).toBe('no-store');
    expect(client.headers.get('cache-control')).toBe('no-store');
    const secrets = [key.body['key'], client.body['client_secret'], rotated.body['client_secret'], 'a password nobody may see'] as string[];
    const modelWithSecretRef = 'owasp-secret-ref';
    const created = await call('POST', '/api/v1/autonomous/ai/models', {
      headers: admin,
      body: {
        model: modelWithSecretRef,
        provider: 'openai',
        task_types: ['chat'],
        context_window: 1000,
        input_price_per_mtok: 1,
        output_price_per_mtok: 1,
        quality: { chat: { low: 0.5, medium: 0.5, high: 0.5 } },
        credentials_ref: 'env:OWASP_SECRET_API_KEY',
        deployments: [{ id: 'eu', credentials_ref: 'file:/run/secrets/owasp-deployment-key' }],
      },
    });
    expect(created.status).toBe(201);
    const answers = [
      user,
      created,
      await call('GET', '/api/v1/identity/api-keys', { headers: admin }),
      await call('GET', `/api/v1/identity/api-keys/${key.body['id'] as string}`, { headers: admin }),
      await call('GET', '/api/v1/identity/clients', { headers: admin }),
      await call('GET', `/api/v1/identity/clients/${client.body['client_id'] as string}`, { headers: admin }),
      await call('GET', '/api/v1/identity/users', { headers: admin }),
      await call('GET', `/api/v1/autonomous/ai/models/${modelWithSecretRef}`, { headers: admin }),
      await call('GET', '/api/v1/autonomous/ai/models?limit=200', { headers: admin }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBeLessThan(300);
      for (const secret of secrets) expect(answer.text).not.toContain(secret);
      expect(answer.text).not.toMatch(/hash|client_secret|"key"|password|credentials_ref|OWASP_SECRET_API_KEY|owasp-deployment-key/i);
    }
    expect(created.body['has_credentials']).toBe(true);
    await call('DELETE', `/api/v1/autonomous/ai/models/${modelWithSecretRef}`, { headers: admin });
  });
});

describe('API4 unrestricted resource consumption', () => {
  it('refuses a body over the size limit with 413 before reading it all', async () => {
    const answer = await call('POST', '/api/v1/identity/api-keys', {
      headers: await as('consumption'),
      raw: JSON.stringify({ name: 'x'.repeat(blocks.platform.config.http.body_limit_bytes) }),
    });
    expect(answer.status).toBe(413);
    expect(answer.body['code']).toBe('BODY_TOO_LARGE');
  });

  it('refuses JSON nested deeper than the limit with 400 JSON_TOO_DEEP', async () => {
    const depth = blocks.platform.config.http.json_max_depth + 1;
    const answer = await call('POST', '/api/v1/autonomous/ai/route', {
      headers: await as('consumption'),
      raw: `{"task_type":"chat","complexity":"low","context":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    });
    expect(answer.status).toBe(400);
    expect(answer.body['code']).toBe('JSON_TOO_DEEP');
  });

  it('rate limits per caller: 429 with Retry-After and RateLimit headers past the allowance', async () => {
    const key = await as('rate-limited', ['service:read']);
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) answers.push(await call('GET', '/api/v1/autonomous', { headers: key }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    const refused = answers[2] as Answer;
    expect(refused.body['code']).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-policy')).toMatch(/q=2;w=60/);
    expect(refused.headers.get('ratelimit')).toMatch(/r=0/);
    // Another caller's allowance is its own.
    expect((await call('GET', '/api/v1/autonomous', { headers: await as('rate-limited-too', ['service:read']) })).status).toBe(200);
  });

  it('caps page sizes on every paginated list the API documents', async () => {
    const doc = (await (await fetch(`${blocks.urls.gateway as string}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>>;
    };
    const lists = Object.entries(doc.paths)
      .filter(([path, ops]) => !path.includes('{') && ops.get?.parameters?.some((p) => p.in === 'query' && p.name === 'limit'))
      .map(([path]) => path);
    expect(lists).toEqual(
      expect.arrayContaining(['/api/v1/identity/api-keys', '/api/v1/autonomous/ai/models', '/api/v1/autonomous/ai/budgets']),
    );
    const headers = await as('consumption');
    for (const path of lists) {
      const tooMany = await call('GET', `${path}?limit=201`, { headers });
      expect(tooMany.status, path).toBe(400);
      const one = await call('GET', `${path}?limit=1`, { headers });
      expect(one.status, path).toBe(200);
      expect((one.body['items'] as unknown[]).length, path).toBeLessThanOrEqual(1);
    }
  });

  it('caps the size of lists inside bodies', async () => {
    const answer = await call('POST', '/api/v1/identity/api-keys', {
      headers: await as('consumption'),
      body: { name: 'k', scopes: Array.from({ length: 51 }, () => 'ai:route') },
    });
    expect(answer.status).toBe(400);
    expect(answer.body['errors']).toContainEqual(expect.objectContaining({ pointer: '/scopes' }));
  });

  it('keeps /metrics bounded and valid whatever model names callers send: a name not in the catalog is counted as `unknown`', async () => {
    const headers = await as('consumption-metrics');
    const scrape = async () => parseExposition((await call('GET', '/metrics')).text);
    const catalog = await call('GET', '/api/v1/autonomous/ai/models?limit=200', { headers });
    const known = new Set([...(catalog.body['items'] as Array<{ model: string }>).map((m) => m.model), 'unknown']);
    // U+0000 is refused before any route (400, control-characters.ts): the random names carry another control
    // character so that they reach the proxy; NUL names are sent too and must stay out of /metrics.
    const hostileNames = [
      'soh\u0001byte',
      'nul\u0000byte',
      'line\nfeed',
      'carriage\rreturn',
      'quote"}evil="1',
      'back\\slash',
      'ünïcode-模型',
      ' ',
      'x'.repeat(256),
    ];
    const send = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const model = hostileNames[i] ?? `${randomBytes(6).toString('hex')}\u0001${randomBytes(4).toString('base64')}`;
        const answer = await call('POST', '/v1/chat/completions', {
          headers,
          body: { model, messages: [{ role: 'user', content: 'hi' }] },
        });
        expect(answer.status, JSON.stringify(model)).toBeGreaterThanOrEqual(400);
        expect(answer.status, JSON.stringify(model)).toBeLessThan(500);
      }
    };
    // The first two names make the series every later one is counted under (the proxy's 404 and the kernel's
    // 400 for a NUL), and a scrape /metrics' own.
    await send(2);
    await scrape();
    const before = await scrape();
    await send(200);
    const again = await scrape();
    // 200 more names add no series at all (they added 18 each: a counter and a histogram per name).
    const ours = (samples: Sample[]) => new Set(samples.filter((s) => /^(blocks_ai_|http_)/.test(s.name)).map(seriesOf));
    expect(ours(again)).toEqual(ours(before));
    expect(again.length - before.length).toBeLessThanOrEqual(10);
    const models = new Set(
      again.flatMap((s) => (s.name.startsWith('blocks_ai_') && s.labels['model'] !== undefined ? [s.labels['model']] : [])),
    );
    expect(models.has('unknown')).toBe(true);
    expect([...models].filter((model) => !known.has(model))).toEqual([]);
    const text = (await call('GET', '/metrics')).text;
    expect(text.includes('\u0000') || text.includes('\r')).toBe(false);
  });
});

describe('API5 broken function level authorization', () => {
  it('refuses every route to a credential holding every scope but the one the route needs (403 naming it)', async () => {
    const checked: string[] = [];
    for (const role of ROLES) {
      for (const route of inventory(role)) {
        if (KINDS.has(route.scope)) continue;
        // A route may only need a scope that can be granted, or nobody could ever call it.
        expect(SCOPES.known, `${route.method} ${route.url}`).toContain(route.scope);
        const headers = await as(
          'function-level',
          SCOPES.known.filter((scope) => scope !== route.scope),
        );
        const answer = await call(route.method, pathOf(route.url), { headers, role });
        expect(answer.status, `${role} ${route.method} ${route.url}`).toBe(403);
        if (route.method !== 'HEAD') {
          expect(answer.body['code']).toBe('INSUFFICIENT_SCOPE');
          expect(answer.body['scope']).toBe(route.scope);
        }
        checked.push(`${route.method} ${route.url}`);
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['POST /api/v1/identity/api-keys', 'PUT /api/v1/autonomous/ai/models/:model']));
  });

  it('keeps admin routes from a key without identity:admin, and budgets from a key without ai:budgets', async () => {
    const invoker = await as('function-level', ['ai:invoke', 'ai:route']);
    for (const [method, path] of [
      ['GET', '/api/v1/identity/api-keys'],
      ['POST', '/api/v1/identity/api-keys'],
      ['POST', '/api/v1/identity/users'],
      ['PUT', '/api/v1/autonomous/ai/budgets/tenant/function-level/day'],
      ['POST', '/api/v1/autonomous/ai/models'],
    ] as const) {
      const answer = await call(method, path, { headers: invoker, ...(method === 'GET' ? {} : { body: {} }) });
      expect(answer.status, `${method} ${path}`).toBe(403);
    }
  });

  it("refuses a tenant's admin granting tenants:admin, the operator's scope, to a key or a client (403 SCOPE_NOT_GRANTABLE)", async () => {
    const tenantAdmin = await as(
      'escalation',
      SCOPES.known.filter((scope) => scope !== 'tenants:admin'),
    );
    for (const path of ['/api/v1/identity/api-keys', '/api/v1/identity/clients']) {
      const answer = await call('POST', path, { headers: tenantAdmin, body: { name: 'operator', scopes: ['tenants:admin'] } });
      expect(answer.status, path).toBe(403);
      expect(answer.body['code'], path).toBe('SCOPE_NOT_GRANTABLE');
    }
    expect((await call('GET', '/api/v1/identity/api-keys', { headers: tenantAdmin })).text).not.toContain('"operator"');
  });

  // Nobody grants more than they hold: a key limited to identity administration must not mint itself
  // wider keys or clients (ai:models:write among them, which rewrites the catalog every tenant is routed by).
  for (const path of ['/api/v1/identity/api-keys', '/api/v1/identity/clients']) {
    it(`refuses a key creating, at ${path}, a credential with scopes it does not hold itself`, async () => {
      const identityOnly = await as('escalation', ['identity:admin']);
      const answer = await call('POST', path, {
        headers: identityOnly,
        body: { name: 'wider', scopes: ['identity:admin', 'ai:models:write'] },
      });
      expect(answer.status).toBe(403);
      expect(answer.body['code']).toBe('SCOPE_NOT_GRANTABLE');
      expect(answer.body['scopes']).toEqual(['ai:models:write']);
      expect((await call('GET', path, { headers: identityOnly })).text).not.toContain('"wider"');
    });
  }

  // Nor may it take over (or change, or remove) a principal holding more than it does: the caller must
  // hold every scope of the target. Each case plays the attack through to the token it would yield.
  const tokenOf = async (form: Record<string, string>, client: { id: string; secret: string }): Promise<Answer> => {
    const response = await fetch(`${blocks.urls.gateway as string}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams(form),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, body: JSON.parse(text) as Record<string, unknown> };
  };

  it("refuses an identity:admin-only key rotating the operator client's secret (403 SCOPE_NOT_GRANTABLE): no operator token for it", async () => {
    const operator = blocks.identity.firstStart();
    if (operator === null) throw new Error('no first-start client');
    const identityOnly = await as(operator.tenant, ['identity:admin']);
    const rotated = await call('POST', `/api/v1/identity/clients/${operator.clientId}/rotate-secret`, { headers: identityOnly });
    // The attack's next step: the new secret minting the operator's scopes.
    const stolen = await tokenOf(
      { grant_type: 'client_credentials', scope: 'tenants:admin ai:models:write' },
      { id: operator.clientId, secret: (rotated.body['client_secret'] as string | undefined) ?? 'none' },
    );
    expect(stolen.status, `token minted with the rotated secret: ${stolen.text}`).toBe(401);
    expect(rotated.status).toBe(403);
    expect(rotated.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', client_id: operator.clientId });
    expect(rotated.body['scopes']).toEqual(expect.arrayContaining(['tenants:admin', 'ai:models:write']));
    expect(rotated.text).not.toContain('client_secret');
    // Nothing changed: the operator's own secret still mints its token; the narrow key cannot delete the client either.
    const deleted = await call('DELETE', `/api/v1/identity/clients/${operator.clientId}`, { headers: identityOnly });
    expect(deleted.body['code']).toBe('SCOPE_NOT_GRANTABLE');
    const own = await tokenOf(
      { grant_type: 'client_credentials', scope: 'tenants:admin ai:models:write' },
      { id: operator.clientId, secret: operator.clientSecret },
    );
    expect(own.status).toBe(200);
  });

  it("refuses an identity:admin-only key resetting an admin user's password (403 SCOPE_NOT_GRANTABLE): it cannot sign in as them", async () => {
    const tenant = 'takeover';
    const tenantAdmin = await as(
      tenant,
      SCOPES.known.filter((scope) => scope !== 'tenants:admin' && scope !== 'ai:models:write'),
    );
    const password = 'the admin user’s own passphrase';
    const admin = await call('POST', '/api/v1/identity/users', {
      headers: tenantAdmin,
      body: { email: 'admin@takeover.example', password, roles: ['admin'] },
    });
    // The tenant's sign-in app: any of its users signs in through it with what the user's roles grant.
    const app = await call('POST', '/api/v1/identity/clients', {
      headers: tenantAdmin,
      body: { name: 'sign-in app', scopes: admin.body['scopes'] },
    });
    expect([admin.status, app.status]).toEqual([201, 201]);
    const signIn = (secret: string): Promise<Answer> =>
      tokenOf(
        { grant_type: 'password', username: 'admin@takeover.example', password: secret },
        { id: app.body['client_id'] as string, secret: app.body['client_secret'] as string },
      );

    const identityOnly = await as(tenant, ['identity:admin']);
    const attackerPassword = 'chosen by the attacker';
    const reset = await call('POST', `/api/v1/identity/users/${admin.body['id'] as string}/password`, {
      headers: identityOnly,
      body: { password: attackerPassword },
    });
    // The attack's next step: signing in as the admin with the password it chose.
    const stolen = await signIn(attackerPassword);
    expect(stolen.status, `signed in as the admin: ${stolen.text}`).toBe(400);
    expect(stolen.body['error']).toBe('invalid_grant');
    expect(reset.status).toBe(403);
    expect(reset.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', id: admin.body['id'] });
    // Nor may it demote the admin, or delete it; the admin still signs in with its own password.
    const demoted = await call('PUT', `/api/v1/identity/users/${admin.body['id'] as string}/roles`, {
      headers: identityOnly,
      body: { roles: [] },
    });
    const deleted = await call('DELETE', `/api/v1/identity/users/${admin.body['id'] as string}`, { headers: identityOnly });
    expect([demoted.body['code'], deleted.body['code']]).toEqual(['SCOPE_NOT_GRANTABLE', 'SCOPE_NOT_GRANTABLE']);
    const own = await signIn(password);
    expect(own.status).toBe(200);
    expect(own.body['scope']).toContain('identity:admin');
  });
});

describe('API8 security misconfiguration', () => {
  const hardened = (answer: Answer, what: string): void => {
    expect(answer.headers.get('x-content-type-options'), what).toBe('nosniff');
    expect(answer.headers.get('x-frame-options'), what).toBe('DENY');
    expect(answer.headers.get('referrer-policy'), what).toBe('no-referrer');
    expect(answer.headers.get('content-security-policy'), what).toMatch(/default-src 'none'/);
    expect(answer.headers.get('server'), what).toBeNull();
    expect(answer.headers.get('x-powered-by'), what).toBeNull();
  };

  it('sends the security headers on every kind of answer, and no banner', async () => {
    const key = await as('misconfig');
    const answers: Array<[string, Answer]> = [
      ['200', await call('GET', '/api/v1/identity/api-keys', { headers: key })],
      ['401', await call('GET', '/api/v1/identity/api-keys')],
      ['403', await call('GET', '/api/v1/identity/api-keys', { headers: await as('misconfig', ['ai:route']) })],
      ['404', await call('GET', '/no/such/route')],
      ['405', await call('PATCH', '/api/v1/identity/api-keys', { headers: key })],
      ['400', await call('POST', '/api/v1/identity/api-keys', { headers: key, raw: '{"name":' })],
      ['413', await call('POST', '/api/v1/identity/api-keys', { headers: key, raw: 'x'.repeat(2_000_000) })],
      ['health', await call('GET', '/health')],
      ['autonomous 404', await call('GET', '/nothing', { role: 'autonomous' })],
    ];
    for (const [what, answer] of answers) hardened(answer, what);
  });

  it('answers malformed requests with a problem document that carries no stack trace, path or version', async () => {
    const key = await as('misconfig');
    const answers = [
      await call('POST', '/api/v1/identity/api-keys', { headers: key, raw: '{"name": "x",' }),
      await call('POST', '/api/v1/identity/api-keys', { headers: key, raw: '' }),
      await call('POST', '/api/v1/identity/api-keys', { headers: { ...key, 'content-type': 'text/plain' }, raw: 'name' }),
      await call('POST', '/api/v1/identity/api-keys', { headers: key, raw: '{"__proto__": {"admin": true}, "name": "x"}' }),
      await call('GET', '/api/v1/identity/api-keys/%E0%A4%A', { headers: key }),
      await call('GET', '/api/v1/autonomous/ai/models?cursor=%00', { headers: key }),
      await call('GET', `/api/v1/autonomous/ai/models?cursor=${Buffer.from('a\u0000').toString('base64url')}`, { headers: key }),
    ];
    for (const answer of answers) {
      expect(answer.status, answer.text).toBeGreaterThanOrEqual(400);
      expect(answer.status, answer.text).toBeLessThan(500);
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(answer.text).not.toMatch(/\bat .+:\d+:\d+|node_modules|\/src\/|\.ts\b|fastify|node:internal|\bv?\d+\.\d+\.\d+\b/i);
    }
  });

  it('grants no browser origin by default: a foreign preflight is refused and no answer allows any origin', async () => {
    expect(blocks.platform.config.http.cors.origins).toEqual([]);
    const preflight = await call('OPTIONS', '/api/v1/identity/api-keys', {
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const simple = await call('GET', '/api/v1/identity/api-keys', {
      headers: { ...(await as('misconfig')), origin: 'https://evil.example' },
    });
    expect(simple.status).toBe(200);
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    expect(simple.headers.get('access-control-allow-credentials')).toBeNull();
    expect(simple.headers.get('vary')).toMatch(/Origin/);
  });

  it('refuses U+0000 where it reached PostgreSQL as a 500 (ids in the path, names, the model of a call) with 400 naming the field; nothing is written', async () => {
    const key = await as('nul-bytes');
    for (const path of ['/api/v1/identity/clients/%00', '/api/v1/identity/tenants/%00', '/api/v1/identity/api-keys/%00']) {
      const answer = await call('GET', path, { headers: key });
      expect(answer.status, path).toBe(400);
      expect(answer.body['errors'], path).toEqual([expect.objectContaining({ location: 'params' })]);
    }
    for (const [path, body] of [
      ['/api/v1/identity/api-keys', { name: 'a\u0000b', scopes: [] }],
      ['/api/v1/identity/clients', { name: 'a\u0000b', scopes: [] }],
      ['/api/v1/identity/devices', { name: 'a\u0000b', fingerprint: 'nul-bytes-0001' }],
      ['/api/v1/identity/tenants', { id: 'nul-bytes-b', name: 'a\u0000b' }],
    ] as const) {
      const answer = await call('POST', path, { headers: key, body });
      expect(answer.status, path).toBe(400);
      expect(answer.body['errors'], path).toEqual([expect.objectContaining({ location: 'body', pointer: '/name' })]);
      expect((await call('GET', `${path}?limit=200`, { headers: key })).text, path).not.toContain('\\u0000');
    }
    const chat = await call('POST', '/v1/chat/completions', {
      headers: key,
      body: { model: 'gpt-4o\u0000', messages: [{ role: 'user', content: 'hi' }] },
    });
    expect(chat.status).toBe(400);
  });
});

describe('API9 improper inventory management', () => {
  // Every served route is in the OpenAPI document and the document names nothing unserved:
  // test/e2e/inventory.test.ts. Here: nothing in that inventory is open by accident.
  it('refuses an anonymous call to every route of every service that is not public', async () => {
    const open: string[] = [];
    let checked = 0;
    for (const role of ROLES) {
      for (const route of inventory(role)) {
        if (route.scope === 'public') {
          open.push(`${route.method} ${route.url}`);
          continue;
        }
        // The token endpoint authenticates the client itself: a well-formed grant with no client is refused like any missing credential.
        const answer =
          route.scope === 'client'
            ? await fetch(`${blocks.urls[role] as string}${pathOf(route.url)}`, {
                method: route.method,
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
                body: 'grant_type=client_credentials',
              })
            : await call(route.method, pathOf(route.url), { role });
        expect(answer.status, `${role} ${route.method} ${route.url}`).toBe(401);
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(40);
    // What anyone may call: health, metrics, the API documentation and the issuer's published keys.
    const allowed = /^(GET|HEAD) (\/health(\/ready|\/live)?|\/metrics|\/docs(\/.*)?|\/\.well-known\/(openid-configuration|jwks\.json))$/;
    expect(open.filter((route) => !allowed.test(route))).toEqual([]);
  });
});
