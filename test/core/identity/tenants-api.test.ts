import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';

import { startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { scopes as SCOPES } from '../../support/registry.ts';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('tenants API (platform operator)', () => {
  let blocks: RunningBlocks;
  let creds: TestCredentials;

  const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> => {
    const res = await fetch(`${blocks.urls.gateway}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  // The operator: tenants:admin, and every scope the new tenant's admin client gets (the grant rule).
  const operator = (): Promise<Record<string, string>> => creds.headers('default', ['tenants:admin', ...SCOPES.tenantAdmin]);
  const tokenFor = async (clientId: string, secret: string): Promise<string> => {
    const res = await fetch(`${blocks.urls.gateway}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  };

  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig(), roles: ['gateway'] });
    creds = testCredentials(blocks);
  });
  afterAll(async () => {
    await blocks?.close();
  });

  it('gives the first-start admin client every scope: it is the operator and the default tenant admin', async () => {
    const first = blocks.identity.firstStart();
    const client = await blocks.identity.authenticateClient(first?.clientId as string, first?.clientSecret as string);
    expect(client?.scopes).toEqual(SCOPES.known);
  });

  it('creates a tenant with its own admin client, which administers that tenant only', async () => {
    const created = await call('POST', '/api/v1/identity/tenants', await operator(), { id: 'globex', name: 'Globex' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'globex', name: 'Globex', admin_client: { scopes: [...SCOPES.tenantAdmin] } });
    expect((created.body.admin_client as { scopes: string[] }).scopes).not.toContain('tenants:admin');
    expect((created.body.admin_client as { scopes: string[] }).scopes).not.toContain('ai:models:write');
    const admin = created.body.admin_client as { client_id: string; client_secret: string };

    const token = await tokenFor(admin.client_id, admin.client_secret);
    const bearer = { authorization: `Bearer ${token}` };
    const key = await call('POST', '/api/v1/identity/api-keys', bearer, { name: 'globex key', scopes: ['ai:read'] });
    expect(key.status).toBe(201);
    expect(await blocks.identity.verifyApiKey(key.body.key as string)).toMatchObject({ tenant: 'globex' });

    // The tenant's admin is not the operator: it can neither list tenants nor make one.
    expect((await call('GET', '/api/v1/identity/tenants', bearer)).status).toBe(403);
    expect((await call('POST', '/api/v1/identity/tenants', bearer, { id: 'evil', name: 'x' })).status).toBe(403);
    expect((await call('GET', '/api/v1/identity/tenants/evil', await operator())).status).toBe(404);
  });

  it('refuses tenants:admin alone a tenant: its admin client would get scopes the caller lacks (403 SCOPE_NOT_GRANTABLE)', async () => {
    const answer = await call('POST', '/api/v1/identity/tenants', await creds.headers('default', ['tenants:admin']), {
      id: 'narrow',
      name: 'Narrow',
    });
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', field: 'admin_client.scopes' });
    expect((await call('GET', '/api/v1/identity/tenants/narrow', await operator())).status).toBe(404);
  });

  it('refuses identity:admin without tenants:admin', async () => {
    const answer = await call('GET', '/api/v1/identity/tenants', await creds.headers('default', ['identity:admin']));
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'tenants:admin' });
  });

  it('lists and reads tenants, and pages through them', async () => {
    const list = await call('GET', '/api/v1/identity/tenants?limit=1', await operator());
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    expect(list.body.next_cursor).toEqual(expect.any(String));
    const next = await call('GET', `/api/v1/identity/tenants?limit=200&cursor=${list.body.next_cursor as string}`, await operator());
    const ids = [...(list.body.items as { id: string }[]), ...(next.body.items as { id: string }[])].map((t) => t.id);
    expect(ids).toEqual(expect.arrayContaining(['default', 'globex']));
    expect((await call('GET', '/api/v1/identity/tenants/globex', await operator())).body).toMatchObject({ id: 'globex', name: 'Globex' });
  });

  it('makes exactly one of two concurrent creations of one id, and refuses bad ids and extra fields', async () => {
    const headers = await operator();
    const answers = await Promise.all(
      [1, 2, 3].map(() => call('POST', '/api/v1/identity/tenants', headers, { id: 'initech', name: 'Initech' })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409]);
    expect(answers.find((a) => a.status === 409)?.body).toMatchObject({ code: 'TENANT_EXISTS' });
    const { rows } = await blocks.platform.db.query("SELECT client_id FROM oauth_clients WHERE tenant = 'initech'");
    expect(rows).toHaveLength(1);

    const bad = await call('POST', '/api/v1/identity/tenants', headers, { id: 'Not A Slug', name: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_IDENTITY_INPUT', field: 'id' });
    expect((await call('POST', '/api/v1/identity/tenants', headers, { id: 'ok', name: 'x', admin: true })).status).toBe(400);
  });

  it("refuses to let a tenant's admin grant itself the operator scope", async () => {
    const admin = await creds.headers('globex', SCOPES.tenantAdmin);
    for (const path of ['/api/v1/identity/api-keys', '/api/v1/identity/clients']) {
      const answer = await call('POST', path, admin, { name: 'escalate', scopes: ['tenants:admin'] });
      expect(answer.status).toBe(403);
      expect(answer.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', scopes: ['tenants:admin'] });
    }
    const { rows } = await blocks.platform.db.query("SELECT 1 FROM api_keys WHERE tenant = 'globex' AND 'tenants:admin' = ANY (scopes)");
    expect(rows).toHaveLength(0);
    // The operator, holding it, may hand it on (to a second operator key of its own tenant).
    const granted = await call('POST', '/api/v1/identity/api-keys', await creds.headers('default', ['identity:admin', 'tenants:admin']), {
      name: 'second operator',
      scopes: ['tenants:admin'],
    });
    expect(granted.status).toBe(201);
  });
});
