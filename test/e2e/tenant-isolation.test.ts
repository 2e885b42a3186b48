import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { stringify as toYaml } from 'yaml';

import type { Role, RunningBlocks } from '../../src/start.ts';
import type { RouteInventoryEntry } from '../../src/platform/http/create-http-server.ts';
import { eventually, startTestBlocks, tempDir, testConfig } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { catalogModel } from '../support/catalog-model.ts';
import { startFakeOpenAi, type FakeProvider } from '../support/fake-providers/index.ts';
import { scopes as SCOPES } from '../support/registry.ts';
import { withMigratedPglite } from '../support/templates.ts';

// Tenant isolation through every endpoint (issue 4): tenant B, holding every scope a tenant can
// hold, can neither read, list, change nor learn the existence of tenant A's objects. The test
// walks the route inventory of each running service: every route that is not public must have
// a case below, either proving isolation or saying why the route has no tenant's objects. A route
// added without one fails the first test.
//
// Decisions recorded here:
// - The model catalog is global: one catalog for the platform, read by every tenant (no tenant's
//   data is in it; credentials are never shown). Writing it needs ai:models:write, which only
//   operators should hold: a tenant holding it changes routing for every tenant.
// - Learned estimates (/ai/stats `estimates`) are per tenant, like its calibration: each tenant
//   starts from the catalog's figures and learns from its own outcomes only, so no tenant steers
//   another's routing or watches its traffic (docs/learning.md).
// - Tenants themselves (/identity/tenants) are the platform operator's, scope tenants:admin,
//   which no tenant role carries.

const A = 'iso-a';
const B = 'iso-b';
const dir = tempDir('blocks-tenant-isolation');

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

/** Tenant A's objects, made through the API before any case runs. */
interface Fixture {
  apiKeyId: string;
  /** A's own caller key (the one its requests carry), which a per-key budget may name. */
  callerKeyId: string;
  clientId: string;
  clientSecret: string;
  userId: string;
  userEmail: string;
  deviceId: string;
  deviceFingerprint: string;
  decisionId: string;
}

let blocks: RunningBlocks;
let creds: TestCredentials;
let fake: FakeProvider;
let a: Record<string, string>;
let b: Record<string, string>;
const fx = {} as Fixture;

beforeAll(async () => {
  fake = await startFakeOpenAi({ kind: 'answer' });
  const catalogFile = join(dir.path, 'models.yaml');
  writeFileSync(
    catalogFile,
    toYaml({
      models: [catalogModel('iso-model')],
    }),
  );
  blocks = await startTestBlocks({
    config: testConfig(
      { BLOCKS_DATA_DIR: withMigratedPglite(join(dir.path, 'data')) },
      {
        // Refused credentials are part of the cases; the throttle they would earn is another test's subject.
        auth: { failed_attempts: { limit: 1_000_000, period: 60_000, burst: 1_000_000 } },
        ai: { catalog_file: catalogFile, providers: { fake: { protocol: 'openai', base_url: fake.baseUrl } }, routing: { exploration: 0 } },
      },
    ),
  });
  creds = testCredentials(blocks);
  a = await creds.headers(A);
  b = await creds.headers(B);
  fx.callerKeyId = await creds.keyId(A);

  const made = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
    const answer = await call(method, path, { headers: a, body });
    if (answer.status >= 300) throw new Error(`fixture ${method} ${path}: ${answer.status} ${answer.text}`);
    return answer.body;
  };
  fx.apiKeyId = (await made('POST', '/api/v1/identity/api-keys', { name: 'a-key', scopes: ['ai:route'] }))['id'] as string;
  const client = await made('POST', '/api/v1/identity/clients', { name: 'a-client', scopes: ['ai:route'] });
  fx.clientId = client['client_id'] as string;
  fx.clientSecret = client['client_secret'] as string;
  fx.userEmail = 'someone@iso.example';
  fx.userId = (await made('POST', '/api/v1/identity/users', { email: fx.userEmail, password: 'a long password of A', roles: ['viewer'] }))[
    'id'
  ] as string;
  fx.deviceFingerprint = 'device-of-a-0001';
  fx.deviceId = (await made('POST', '/api/v1/identity/devices', { name: 'a-laptop', fingerprint: fx.deviceFingerprint }))['id'] as string;
  await made('PUT', `/api/v1/autonomous/ai/budgets/tenant/${A}/day`, { limit_usd: 50 });
  await made('PUT', `/api/v1/autonomous/ai/budgets/api_key/${fx.callerKeyId}/day`, { limit_usd: 5 });
  fx.decisionId = (await made('POST', '/api/v1/autonomous/ai/route', { task_type: 'chat', complexity: 'low' }))['decision_id'] as string;
  const decidedForFeedback = (await made('POST', '/api/v1/autonomous/ai/route', { task_type: 'chat', complexity: 'low' }))['decision_id'];
  await made('POST', '/api/v1/autonomous/ai/feedback', { decision_id: decidedForFeedback, success: true });
  // Usage: one proxied call of A.
  const chatted = await call('POST', '/v1/chat/completions', {
    headers: a,
    body: { model: 'iso-model', messages: [{ role: 'user', content: 'a' }] },
  });
  if (chatted.status !== 200) throw new Error(`fixture chat: ${chatted.status} ${chatted.text}`);
}, 60_000);

afterAll(async () => {
  await blocks?.close();
  await fake?.close();
  dir.remove();
});

async function call(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown; form?: Record<string, string>; role?: Role } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.form !== undefined) {
    body = new URLSearchParams(options.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${blocks.urls[options.role ?? 'gateway'] as string}${path}`, { method, headers, body });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

/**
 * What B gets for A's object is what it gets for an object that does not exist: the same answer,
 * word for word once the id it asked about and the correlation id are set aside. That is "cannot
 * learn the existence". `at` builds the request for an id (in the path or the body).
 */
async function sameAsMissing(
  role: Role,
  method: string,
  at: (id: string) => { path: string; body?: unknown },
  theirs: string,
  missing: string,
): Promise<Answer> {
  const ask = (id: string) => call(method, at(id).path, { headers: b, body: at(id).body, role });
  const answer = await ask(theirs);
  const none = await ask(missing);
  const what = `${method} ${at(theirs).path}`;
  expect(answer.status, what).toBeGreaterThanOrEqual(400);
  expect(answer.status, what).toBe(none.status);
  expect(normalised(answer, theirs), what).toBe(normalised(none, missing));
  if (method === 'GET') expect((await call('HEAD', at(theirs).path, { headers: b, role })).status).toBe(answer.status);
  return answer;
}

const normalised = (answer: Answer, id: string): string =>
  answer.text.replaceAll(id, '<id>').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');

const inPath = (template: string) => (id: string) => ({ path: template.replace('{id}', id) });

/** Every item of every page of a list, as `who` sees it. */
async function everything(role: Role, path: string, who: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let cursor: string | null = null;
  do {
    const page: Answer = await call('GET', `${path}?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, {
      headers: who,
      role,
    });
    expect(page.status, path).toBe(200);
    items.push(...(page.body['items'] as Array<Record<string, unknown>>));
    cursor = page.body['next_cursor'] as string | null;
  } while (cursor !== null);
  return items;
}

const otherClientId = (): string => `cl_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

type Case =
  | { readonly isolated: (role: Role) => Promise<void> }
  /** No tenant's objects behind the route. */
  | { readonly independent: string }
  /** The platform operator's, across tenants: a tenant's full set of scopes is refused. */
  | { readonly operator: string };

const ID = '/api/v1/identity';
const AI = '/api/v1/autonomous/ai';

const CASES: Record<string, Case> = {
  [`POST ${ID}/api-keys`]: {
    isolated: async (role) => {
      const created = await call('POST', `${ID}/api-keys`, { headers: b, body: { name: 'b-key', scopes: ['ai:route'] }, role });
      expect(created.status).toBe(201);
      expect((await call('GET', `${ID}/api-keys/${created.body['id'] as string}`, { headers: a, role })).status).toBe(404);
      expect((await everything(role, `${ID}/api-keys`, a)).map((k) => k['id'])).not.toContain(created.body['id']);
    },
  },
  [`GET ${ID}/api-keys`]: {
    isolated: async (role) => {
      const ids = (await everything(role, `${ID}/api-keys`, b)).map((k) => k['id']);
      expect(ids).not.toContain(fx.apiKeyId);
      expect(ids).not.toContain(fx.callerKeyId);
      expect(ids).toContain(await creds.keyId(B));
    },
  },
  [`GET ${ID}/api-keys/:id`]: {
    isolated: (role) => sameAsMissing(role, 'GET', inPath(`${ID}/api-keys/{id}`), fx.apiKeyId, randomUUID()).then(() => undefined),
  },
  [`DELETE ${ID}/api-keys/:id`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'DELETE', inPath(`${ID}/api-keys/{id}`), fx.apiKeyId, randomUUID());
      expect((await call('GET', `${ID}/api-keys/${fx.apiKeyId}`, { headers: a })).body['revoked_at']).toBeNull();
    },
  },
  [`POST ${ID}/clients`]: {
    isolated: async (role) => {
      const created = await call('POST', `${ID}/clients`, { headers: b, body: { name: 'b-client' }, role });
      expect(created.status).toBe(201);
      expect((await call('GET', `${ID}/clients/${created.body['client_id'] as string}`, { headers: a, role })).status).toBe(404);
    },
  },
  [`GET ${ID}/clients`]: {
    isolated: async (role) => {
      expect((await everything(role, `${ID}/clients`, b)).map((c) => c['client_id'])).not.toContain(fx.clientId);
    },
  },
  [`GET ${ID}/clients/:client_id`]: {
    isolated: (role) => sameAsMissing(role, 'GET', inPath(`${ID}/clients/{id}`), fx.clientId, otherClientId()).then(() => undefined),
  },
  [`POST ${ID}/clients/:client_id/rotate-secret`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'POST', inPath(`${ID}/clients/{id}/rotate-secret`), fx.clientId, otherClientId());
      await expectClientWorks();
    },
  },
  [`DELETE ${ID}/clients/:client_id`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'DELETE', inPath(`${ID}/clients/{id}`), fx.clientId, otherClientId());
      await expectClientWorks();
    },
  },
  [`POST ${ID}/users`]: {
    isolated: async (role) => {
      // The same email in B is a new user, not a 409 that would tell B that A has it.
      const created = await call('POST', `${ID}/users`, {
        headers: b,
        body: { email: fx.userEmail, password: 'a long password of B' },
        role,
      });
      expect(created.status).toBe(201);
      expect((await call('GET', `${ID}/users/${created.body['id'] as string}`, { headers: a, role })).status).toBe(404);
    },
  },
  [`GET ${ID}/users`]: {
    isolated: async (role) => {
      expect((await everything(role, `${ID}/users`, b)).map((u) => u['id'])).not.toContain(fx.userId);
    },
  },
  [`GET ${ID}/users/:id`]: {
    isolated: (role) => sameAsMissing(role, 'GET', inPath(`${ID}/users/{id}`), fx.userId, randomUUID()).then(() => undefined),
  },
  [`PUT ${ID}/users/:id/roles`]: {
    isolated: async (role) => {
      await sameAsMissing(
        role,
        'PUT',
        (id) => ({ path: `${ID}/users/{id}/roles`.replace('{id}', id), body: { roles: ['admin'] } }),
        fx.userId,
        randomUUID(),
      );
      expect((await call('GET', `${ID}/users/${fx.userId}`, { headers: a })).body['roles']).toEqual(['viewer']);
    },
  },
  [`POST ${ID}/users/:id/password`]: {
    isolated: async (role) => {
      await sameAsMissing(
        role,
        'POST',
        (id) => ({
          path: `${ID}/users/{id}/password`.replace('{id}', id),
          body: {
            password: 'taken over by B!',
          },
        }),
        fx.userId,
        randomUUID(),
      );
    },
  },
  [`DELETE ${ID}/users/:id`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'DELETE', inPath(`${ID}/users/{id}`), fx.userId, randomUUID());
      expect((await call('GET', `${ID}/users/${fx.userId}`, { headers: a })).status).toBe(200);
    },
  },
  [`POST ${ID}/devices`]: {
    isolated: async (role) => {
      // A's device fingerprint registered in B: a device of B's, not a 409 naming A's.
      const created = await call('POST', `${ID}/devices`, {
        headers: b,
        body: { name: 'b-laptop', fingerprint: fx.deviceFingerprint },
        role,
      });
      expect(created.status).toBe(201);
      expect((await everything(role, `${ID}/devices`, a)).map((d) => d['id'])).toEqual([fx.deviceId]);
    },
  },
  [`GET ${ID}/devices`]: {
    isolated: async (role) => {
      expect((await everything(role, `${ID}/devices`, b)).map((d) => d['id'])).not.toContain(fx.deviceId);
    },
  },
  [`GET ${ID}/devices/:id`]: {
    isolated: (role) => sameAsMissing(role, 'GET', inPath(`${ID}/devices/{id}`), fx.deviceId, randomUUID()).then(() => undefined),
  },
  [`DELETE ${ID}/devices/:id`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'DELETE', inPath(`${ID}/devices/{id}`), fx.deviceId, randomUUID());
      expect((await call('GET', `${ID}/devices/${fx.deviceId}`, { headers: a })).status).toBe(200);
    },
  },
  [`GET ${ID}/tenants`]: { operator: 'lists every tenant: the platform operator’s view across tenants (tenants:admin)' },
  [`GET ${ID}/tenants/:id`]: { operator: 'one tenant: the platform operator’s view across tenants (tenants:admin)' },
  [`POST ${ID}/tenants`]: { operator: 'makes a tenant: the platform operator’s act (tenants:admin)' },
  ['POST /oauth/token']: {
    isolated: async (role) => {
      // A's client with a secret of B's is refused; B's own client gets a token that speaks for B only.
      const bClient = await call('POST', `${ID}/clients`, { headers: b, body: { name: 'b-app', scopes: ['identity:admin'] } });
      const stolen = await call('POST', '/oauth/token', {
        form: { grant_type: 'client_credentials', client_id: fx.clientId, client_secret: bClient.body['client_secret'] as string },
        role,
      });
      expect(stolen.status).toBe(401);
      const issued = await call('POST', '/oauth/token', {
        form: {
          grant_type: 'client_credentials',
          client_id: bClient.body['client_id'] as string,
          client_secret: bClient.body['client_secret'] as string,
        },
        role,
      });
      expect(issued.status).toBe(200);
      const accessToken = issued.body['access_token'] as string;
      expect(decodeJwt(accessToken)['tenant']).toBe(B);
      const bearer = { authorization: `Bearer ${accessToken}` };
      expect((await call('GET', `${ID}/api-keys/${fx.apiKeyId}`, { headers: bearer })).status).toBe(404);
      expect((await call('GET', `${ID}/api-keys`, { headers: { ...bearer, 'x-blocks-tenant': A } })).status).toBe(403);
    },
  },
  ['GET /api/v1/autonomous']: { independent: 'describes the service (name, version, routes); the same for every caller' },
  ['GET /api/v1/collaborative']: { independent: 'describes the service (name, version, routes); the same for every caller' },
  [`POST ${AI}/route`]: {
    isolated: async (role) => {
      // B's decision is B's: A cannot give feedback on it (and B cannot on A's: the feedback case).
      const decided = await call('POST', `${AI}/route`, { headers: b, body: { task_type: 'chat', complexity: 'low' }, role });
      expect(decided.status).toBe(200);
      const feedback = await call('POST', `${AI}/feedback`, {
        headers: a,
        body: { decision_id: decided.body['decision_id'], success: true },
      });
      expect(feedback.status).toBe(404);
    },
  },
  [`POST ${AI}/feedback`]: {
    isolated: async (role) => {
      await sameAsMissing(
        role,
        'POST',
        (id) => ({ path: `${AI}/feedback`, body: { decision_id: id, success: false } }),
        fx.decisionId,
        randomUUID(),
      );
    },
  },
  [`GET ${AI}/stats`]: {
    isolated: async (role) => {
      type Stats = { calibration: { outcomes: number }; estimates: Array<{ observations: number }> };
      const learned = (stats: Stats) => stats.estimates.filter((row) => row.observations > 0).length;
      // A's feedback and proxied call reach A's estimates over the bus; B's show none of them.
      const ofA = await eventually(
        async () => (await call('GET', `${AI}/stats?window=1h`, { headers: a, role })).body as unknown as Stats,
        (stats) => learned(stats) > 0,
      );
      const ofB = (await call('GET', `${AI}/stats?window=1h`, { headers: b, role })).body as unknown as Stats;
      expect(ofA.calibration.outcomes).toBeGreaterThan(0);
      expect(ofB.calibration.outcomes).toBe(0);
      expect(learned(ofB)).toBe(0);
    },
  },
  [`GET ${AI}/models`]: { independent: 'the model catalog is global: one for the platform, no tenant’s data in it (see the header)' },
  [`GET ${AI}/models/:model`]: { independent: 'the model catalog is global (see the header)' },
  [`POST ${AI}/models`]: { independent: 'writes the global catalog: an operator’s act (ai:models:write), not a tenant’s object' },
  [`PUT ${AI}/models/:model`]: { independent: 'writes the global catalog: an operator’s act (ai:models:write), not a tenant’s object' },
  [`DELETE ${AI}/models/:model`]: { independent: 'writes the global catalog: an operator’s act (ai:models:write), not a tenant’s object' },
  [`GET ${AI}/budgets`]: {
    isolated: async (role) => {
      const budgets = await everything(role, `${AI}/budgets`, b);
      expect(budgets.map((budget) => budget['subject'])).not.toContain(A);
      expect(budgets.map((budget) => budget['subject'])).not.toContain(fx.callerKeyId);
    },
  },
  [`GET ${AI}/budgets/:scope/:subject/:period`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'GET', inPath(`${AI}/budgets/tenant/{id}/day`), A, 'iso-nobody');
      await sameAsMissing(role, 'GET', inPath(`${AI}/budgets/api_key/{id}/day`), fx.callerKeyId, randomUUID());
    },
  },
  [`PUT ${AI}/budgets/:scope/:subject/:period`]: {
    isolated: async (role) => {
      await sameAsMissing(
        role,
        'PUT',
        (id) => ({ path: `${AI}/budgets/tenant/{id}/day`.replace('{id}', id), body: { limit_usd: 0 } }),
        A,
        'iso-nobody',
      );
      await sameAsMissing(
        role,
        'PUT',
        (id) => ({
          path: `${AI}/budgets/api_key/{id}/day`.replace('{id}', id),
          body: {
            limit_usd: 0,
          },
        }),
        fx.callerKeyId,
        randomUUID(),
      );
      expect((await call('GET', `${AI}/budgets/tenant/${A}/day`, { headers: a })).body['limit_usd']).toBe(50);
      expect((await call('GET', `${AI}/budgets/api_key/${fx.callerKeyId}/day`, { headers: a })).body['limit_usd']).toBe(5);
    },
  },
  [`DELETE ${AI}/budgets/:scope/:subject/:period`]: {
    isolated: async (role) => {
      await sameAsMissing(role, 'DELETE', inPath(`${AI}/budgets/tenant/{id}/day`), A, 'iso-nobody');
      await sameAsMissing(role, 'DELETE', inPath(`${AI}/budgets/api_key/{id}/day`), fx.callerKeyId, randomUUID());
      expect((await call('GET', `${AI}/budgets/tenant/${A}/day`, { headers: a })).status).toBe(200);
    },
  },
  [`GET ${AI}/usage`]: {
    isolated: async (role) => {
      const ofA = await eventually(
        async () => (await call('GET', `${AI}/usage?group_by=api_key`, { headers: a, role })).body,
        (body) => ((body['totals'] as { requests?: number } | undefined)?.requests ?? 0) > 0,
      );
      expect((ofA['totals'] as { requests: number }).requests).toBeGreaterThan(0);
      const ofB = await call('GET', `${AI}/usage?group_by=api_key`, { headers: b, role });
      expect(ofB.body['tenant']).toBe(B);
      expect(ofB.text).not.toContain(fx.callerKeyId);
      expect((ofB.body['items'] as Array<{ api_key_id: string | null }>).map((item) => item.api_key_id)).not.toContain(fx.callerKeyId);
    },
  },
  ['POST /v1/chat/completions']: {
    isolated: async (role) => {
      // A cached answer of A's is never B's, and A's spent budget never refuses B.
      const body = { model: 'iso-model', messages: [{ role: 'user', content: `cached for A via ${role}` }] };
      const cached = { 'x-blocks-cache-ttl': '60' };
      expect((await call('POST', '/v1/chat/completions', { headers: { ...a, ...cached }, body, role })).headers.get('x-blocks-cache')).toBe(
        'miss',
      );
      expect((await call('POST', '/v1/chat/completions', { headers: { ...a, ...cached }, body, role })).headers.get('x-blocks-cache')).toBe(
        'hit',
      );
      const before = fake.requests.length;
      const ofB = await call('POST', '/v1/chat/completions', { headers: { ...b, ...cached }, body, role });
      expect(ofB.status).toBe(200);
      expect(ofB.headers.get('x-blocks-cache')).toBe('miss');
      expect(fake.requests.length).toBe(before + 1);

      expect((await call('PUT', `${AI}/budgets/tenant/${A}/month`, { headers: a, body: { limit_usd: 0 } })).status).toBe(201);
      expect((await call('POST', '/v1/chat/completions', { headers: a, body, role })).status).toBe(402);
      expect((await call('POST', '/v1/chat/completions', { headers: b, body, role })).status).toBe(200);
      expect((await call('DELETE', `${AI}/budgets/tenant/${A}/month`, { headers: a })).status).toBe(204);
    },
  },
  ['GET /v1/models']: { independent: 'lists auto, the routing policies and the enabled catalog models: the global catalog' },
};

async function expectClientWorks(): Promise<void> {
  const issued = await call('POST', '/oauth/token', {
    form: { grant_type: 'client_credentials', client_id: fx.clientId, client_secret: fx.clientSecret },
  });
  expect(issued.status).toBe(200);
}

/** Non-public routes of a service, HEAD twins folded into their GET. */
const routesOf = (role: Role): RouteInventoryEntry[] =>
  (blocks.apps[role]?.routeInventory() ?? []).filter((route) => route.scope !== 'public');

const ROLES: readonly Role[] = ['gateway', 'autonomous', 'collaborative'];

describe('tenant isolation across every route', () => {
  it('has a case for every route that is not public, on every service', () => {
    const missing = ROLES.flatMap((role) =>
      routesOf(role)
        .map((route) => `${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}`)
        .filter((key) => CASES[key] === undefined)
        .filter(
          (key) =>
            !routesOf(role).some(
              (route) => route.tenantResource && `${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}` === key,
            ),
        )
        .map((key) => `${role}: ${key}`),
    );
    expect(missing, 'routes without a tenant-isolation case: add one to CASES').toEqual([]);
  });

  it('refuses a credential of B naming tenant A (x-blocks-tenant) on every route that takes one', async () => {
    for (const role of ROLES) {
      for (const route of routesOf(role)) {
        if (route.scope === 'client') continue;
        const path = route.url.replace(/:[A-Za-z_]+/g, 'x').replace('*', 'x');
        const answer = await call(route.method, path, { headers: { ...b, 'x-blocks-tenant': A }, role });
        expect(answer.status, `${role} ${route.method} ${route.url}`).toBe(403);
        if (route.method !== 'HEAD') expect(answer.body['code']).toBe('TENANT_MISMATCH');
      }
    }
  });

  // Resources made with the kernel's tenant-owned CRUD helper (src/platform/crud) carry how to make
  // one: every module's, the example module's included, is proved here without a case of its own.
  it("isolates every tenant-owned resource of every module: B can neither read, list, change nor delete A's", async () => {
    const collections = new Map<string, { role: Role; example: Readonly<Record<string, unknown>> }>();
    for (const role of ROLES) {
      for (const route of routesOf(role)) {
        if (route.tenantResource && !collections.has(route.tenantResource.collection)) {
          collections.set(route.tenantResource.collection, { role, example: route.tenantResource.example });
        }
      }
    }
    expect([...collections.keys()]).toContain('/api/v1/collaborative/example/notes');
    for (const [collection, { role, example }] of collections) {
      const made = await call('POST', collection, { headers: a, body: example, role });
      expect(made.status, `${collection}: A creates`).toBe(201);
      const id = made.body['id'] as string;
      const item = `${collection}/${id}`;
      const missing = `${collection}/${randomUUID()}`;
      for (const via of ROLES.filter((r) => routesOf(r).some((route) => route.url === `${collection}/:id`))) {
        const read = await call('GET', item, { headers: b, role: via });
        expect(read.status, `${via} GET ${item} as B`).toBe(404);
        expect(normalised(read, id)).toBe(
          normalised(await call('GET', missing, { headers: b, role: via }), missing.split('/').at(-1) as string),
        );
        const listed = await call('GET', collection, { headers: b, role: via });
        expect(listed.status).toBe(200);
        expect(listed.text).not.toContain(id);
        expect((await call('PATCH', item, { headers: b, body: example, role: via })).status, `${via} PATCH as B`).toBe(404);
        expect((await call('DELETE', item, { headers: b, role: via })).status, `${via} DELETE as B`).toBe(404);
        const own = await call('GET', item, { headers: a, role: via });
        expect(own.status, `${via} GET ${item} as A`).toBe(200);
        expect(own.body).toMatchObject(example);
        expect((await call('GET', collection, { headers: a, role: via })).text).toContain(id);
      }
    }
  });

  for (const [key, kase] of Object.entries(CASES)) {
    const [method, url] = key.split(' ') as [string, string];
    const title =
      'isolated' in kase
        ? `${key}: B cannot reach A's objects`
        : 'independent' in kase
          ? `${key}: no tenant's objects (${kase.independent})`
          : `${key}: operator only (${kase.operator})`;
    it(title, async () => {
      const serving = ROLES.filter((role) => routesOf(role).some((route) => route.method === method && route.url === url));
      expect(serving, `${key} is served by no service: remove its case`).not.toEqual([]);
      if ('operator' in kase) {
        const tenantAdmin = await creds.headers(
          B,
          SCOPES.known.filter((scope) => scope !== 'tenants:admin'),
        );
        for (const role of serving) {
          const answer = await call(method, url.replace(/:[A-Za-z_]+/g, A), { headers: tenantAdmin, role });
          const none = await call(method, url.replace(/:[A-Za-z_]+/g, 'iso-nobody'), { headers: tenantAdmin, role });
          expect(answer.status, `${role} ${key}`).toBe(403);
          expect(normalised(answer, A)).toBe(normalised(none, 'iso-nobody'));
        }
        return;
      }
      if ('independent' in kase) {
        expect(kase.independent.length).toBeGreaterThan(10);
        return;
      }
      for (const role of serving) await kase.isolated(role);
    });
  }
});
