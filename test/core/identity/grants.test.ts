import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import type { RunningBlocks } from '../../../src/start.ts';

import { startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { blocksDatabases } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';
import { scopes as SCOPES } from '../../support/registry.ts';

const postgres = await probeService('postgres');
const PASSWORD = 'correct horse battery staple';

interface Client {
  readonly id: string;
  readonly secret: string;
}

interface TokenAnswer {
  status: number;
  headers: Headers;
  body: {
    access_token?: string;
    refresh_token?: string;
    scope?: string;
    token_type?: string;
    expires_in?: number;
    code?: string;
    error?: string;
    detail?: string;
  };
}

/** Blocks with its gateway and the autonomous service, the token endpoint's grants as configured. */
function harness(overrides: Record<string, unknown>, env: () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }>) {
  const state = {} as { blocks: RunningBlocks; creds: TestCredentials; drop: () => Promise<void> };
  beforeAll(async () => {
    const db = await env();
    state.drop = db.drop;
    state.blocks = await startTestBlocks({ config: testConfig(db.env, overrides), roles: ['gateway', 'autonomous'] });
    state.creds = testCredentials(state.blocks);
  });
  afterAll(async () => {
    await state.blocks?.close();
    await state.drop?.();
  });

  const token = async (params: Record<string, string>, client?: Client): Promise<TokenAnswer> => {
    const res = await fetch(`${state.blocks.urls.gateway}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(client ? { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` } : {}),
      },
      body: new URLSearchParams(params),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as TokenAnswer['body'] };
  };

  const client = async (tenant: string, scopes: readonly string[]): Promise<Client> => {
    const created = await state.blocks.identity.clients.create(tenant, { name: 'app', scopes: [...scopes] }, { correlationId: 'test' });
    return { id: created.client_id, secret: created.client_secret };
  };

  let emails = 0;
  const user = async (roles: string[], tenant = 'acme'): Promise<{ id: string; email: string }> => {
    const email = `user${++emails}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    const res = await fetch(`${state.blocks.urls.gateway}/api/v1/identity/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await state.creds.headers(tenant, SCOPES.tenantAdmin)) },
      body: JSON.stringify({ email, password: PASSWORD, roles }),
    });
    expect(res.status).toBe(201);
    return { id: ((await res.json()) as { id: string }).id, email };
  };

  const admin = async (method: string, path: string, body?: unknown): Promise<number> =>
    (
      await fetch(`${state.blocks.urls.gateway}/api/v1/identity${path}`, {
        method,
        headers: { ...(await state.creds.headers('acme', SCOPES.tenantAdmin)), ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      })
    ).status;

  return { state, token, client, user, admin };
}

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`password and refresh_token grants (${setup.name})`, () => {
    const { state, token, client, user, admin } = harness({ auth: { password_grant: true } }, setup.open);
    let app: Client;
    const login = (email: string, via: Client = app, extra: Record<string, string> = {}): Promise<TokenAnswer> =>
      token({ grant_type: 'password', username: email, password: PASSWORD, ...extra }, via);
    const refresh = (refreshToken: string, via: Client = app, extra: Record<string, string> = {}): Promise<TokenAnswer> =>
      token({ grant_type: 'refresh_token', refresh_token: refreshToken, ...extra }, via);
    const models = (accessToken: string, method = 'GET'): Promise<Response> =>
      fetch(`${state.blocks.urls.gateway}/api/v1/autonomous/ai/models`, {
        method,
        headers: { authorization: `Bearer ${accessToken}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        ...(method === 'POST' ? { body: '{}' } : {}),
      });

    beforeAll(async () => {
      // A client that may carry anything a role grants: the user's roles decide.
      app = await client('acme', SCOPES.roles.admin);
    });

    it('discovery lists the password grant beside client_credentials and refresh_token', async () => {
      const res = await fetch(`${state.blocks.urls.gateway}/.well-known/openid-configuration`);
      expect(((await res.json()) as { grant_types_supported: string[] }).grant_types_supported).toEqual([
        'client_credentials',
        'refresh_token',
        'password',
      ]);
    });

    it('signs a viewer in: its token reads the model catalog and is refused writing it', async () => {
      const viewer = await user(['viewer']);
      const answer = await login(viewer.email.toUpperCase());
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.body).toMatchObject({ token_type: 'Bearer', scope: SCOPES.scopesOfRoles(['viewer']).join(' ') });
      expect(answer.body.refresh_token).toMatch(/^brt_[A-Za-z0-9_-]{43}$/);
      const claims = decodeJwt(answer.body.access_token as string);
      expect(claims).toMatchObject({ sub: viewer.id, tenant: 'acme', client_id: app.id });

      expect((await models(answer.body.access_token as string)).status).toBe(200);
      const write = await models(answer.body.access_token as string, 'POST');
      expect(write.status).toBe(403);
      expect(await write.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:write' });
    });

    it('gives a user without roles a token with no scope, which opens nothing', async () => {
      const nobody = await user([]);
      const answer = await login(nobody.email);
      expect(answer.status).toBe(200);
      expect(answer.body.scope).toBe('');
      expect((await models(answer.body.access_token as string)).status).toBe(403);
    });

    it("grants only what both the user's roles and the client allow, and what was asked for", async () => {
      const developer = await user(['developer']);
      const narrowClient = await client('acme', ['ai:models:read', 'ai:models:write']);
      expect((await login(developer.email, narrowClient)).body.scope).toBe('ai:models:read');
      expect((await login(developer.email, app, { scope: 'ai:invoke' })).body.scope).toBe('ai:invoke');
      const wider = await login(developer.email, app, { scope: 'ai:invoke ai:models:write' });
      expect(wider.status).toBe(400);
      expect(wider.body).toMatchObject({ code: 'OAUTH_INVALID_SCOPE', error: 'invalid_scope' });
      expect(wider.body.detail).toContain('ai:models:write');
      expect(wider.body.detail).not.toContain('ai:invoke');
    });

    it('answers a wrong password and an unknown user alike (invalid_grant, one message), and only in the client’s tenant', async () => {
      const viewer = await user(['viewer']);
      const wrong = await token({ grant_type: 'password', username: viewer.email, password: `${PASSWORD}!` }, app);
      const unknown = await token({ grant_type: 'password', username: `x${viewer.email}`, password: PASSWORD }, app);
      const elsewhere = await login(viewer.email, await client('globex', SCOPES.roles.admin));
      for (const answer of [wrong, unknown, elsewhere]) {
        expect(answer.status).toBe(400);
        expect(answer.body).toMatchObject({ code: 'OAUTH_INVALID_GRANT', error: 'invalid_grant', detail: wrong.body.detail });
        expect(answer.body.access_token).toBeUndefined();
      }
    });

    it('refuses malformed password grants with invalid_request, and an unauthenticated client with invalid_client', async () => {
      const viewer = await user(['viewer']);
      const cases = [
        await token({ grant_type: 'password', username: viewer.email }, app),
        await token({ grant_type: 'password', password: PASSWORD }, app),
        await token({ grant_type: 'password', username: `${'u'.repeat(321)}@example.com`, password: PASSWORD }, app),
      ];
      for (const answer of cases) {
        expect(answer.status).toBe(400);
        expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(answer.body).toMatchObject({ code: 'OAUTH_INVALID_REQUEST', error: 'invalid_request' });
      }
      const anonymous = await token({ grant_type: 'password', username: viewer.email, password: PASSWORD });
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.error).toBe('invalid_client');
    });

    it('gives client_credentials no refresh token (RFC 6749 §4.4.3)', async () => {
      const answer = await token({ grant_type: 'client_credentials' }, app);
      expect(answer.status).toBe(200);
      expect(answer.body).not.toHaveProperty('refresh_token');
    });

    it('rotates on every use; presenting a rotated token again revokes the whole family, audited', async () => {
      const developer = await user(['developer']);
      const first = (await login(developer.email)).body.refresh_token as string;
      const rotated = await refresh(first);
      expect(rotated.status).toBe(200);
      const second = rotated.body.refresh_token as string;
      expect(second).toMatch(/^brt_/);
      expect(second).not.toBe(first);
      expect(rotated.body.scope).toBe(SCOPES.scopesOfRoles(['developer']).join(' '));
      expect(decodeJwt(rotated.body.access_token as string)).toMatchObject({ sub: developer.id, tenant: 'acme', client_id: app.id });
      expect((await models(rotated.body.access_token as string)).status).toBe(200);

      const replay = await refresh(first);
      expect(replay.status).toBe(400);
      expect(replay.body).toMatchObject({ code: 'OAUTH_INVALID_GRANT', error: 'invalid_grant' });
      expect((await refresh(second)).body.error).toBe('invalid_grant');
      const { rows } = await state.blocks.platform.db.query<{ payload: Record<string, unknown> }>(
        "SELECT payload FROM events WHERE event_type = 'identity.refresh_token.reused'",
      );
      expect(rows.map((r) => r.payload)).toContainEqual(
        expect.objectContaining({ tenant: 'acme', subject: developer.id, client_id: app.id, reason: 'reused' }),
      );
    });

    it('narrows scopes on refresh but never widens them; a refused widening leaves the token usable', async () => {
      const viewer = await user(['viewer']);
      const first = (await login(viewer.email)).body.refresh_token as string;
      const narrow = await refresh(first, app, { scope: 'ai:read' });
      expect(narrow.body.scope).toBe('ai:read');
      const next = narrow.body.refresh_token as string;
      const wider = await refresh(next, app, { scope: 'ai:read ai:models:write' });
      expect(wider.status).toBe(400);
      expect(wider.body).toMatchObject({ error: 'invalid_scope' });
      // The refresh token keeps the original grant: without a scope, all of it again.
      const whole = await refresh(next);
      expect(whole.status).toBe(200);
      expect(whole.body.scope).toBe(SCOPES.scopesOfRoles(['viewer']).join(' '));
    });

    it('binds a refresh token to its client: another client presenting it (same tenant or not) is refused and the family revoked', async () => {
      const viewer = await user(['viewer']);
      const issued = (await login(viewer.email)).body.refresh_token as string;
      const sibling = await client('acme', SCOPES.roles.admin);
      const stolen = await refresh(issued, sibling);
      expect(stolen.status).toBe(400);
      expect(stolen.body.error).toBe('invalid_grant');
      expect((await refresh(issued)).body.error).toBe('invalid_grant');

      const again = (await login(viewer.email)).body.refresh_token as string;
      expect((await refresh(again, await client('globex', SCOPES.roles.admin))).body.error).toBe('invalid_grant');
      expect((await refresh(again)).status).toBe(400);
    });

    it("follows the user: a refresh after a role change carries the new roles' scopes; a password reset or deletion ends the session", async () => {
      const developer = await user(['developer']);
      const first = (await login(developer.email)).body.refresh_token as string;
      expect(await admin('PUT', `/users/${developer.id}/roles`, { roles: ['viewer'] })).toBe(200);
      const demoted = await refresh(first);
      expect(demoted.status).toBe(200);
      expect(demoted.body.scope).toBe(SCOPES.scopesOfRoles(['viewer']).join(' '));
      expect(demoted.body.scope).not.toContain('ai:invoke');

      expect(await admin('POST', `/users/${developer.id}/password`, { password: 'a brand new passphrase' })).toBe(204);
      expect((await refresh(demoted.body.refresh_token as string)).body.error).toBe('invalid_grant');

      const other = await user(['viewer']);
      const session = (await login(other.email)).body.refresh_token as string;
      expect(await admin('DELETE', `/users/${other.id}`)).toBe(204);
      expect((await refresh(session)).body.error).toBe('invalid_grant');
    });

    it('of two concurrent uses of one refresh token exactly one succeeds, and the race counts as reuse', async () => {
      const viewer = await user(['viewer']);
      const issued = (await login(viewer.email)).body.refresh_token as string;
      const answers = await Promise.all([refresh(issued), refresh(issued)]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
      const winner = answers.find((a) => a.status === 200);
      expect(answers.find((a) => a.status === 400)?.body.error).toBe('invalid_grant');
      expect((await models(winner?.body.access_token as string)).status).toBe(200);
      expect((await refresh(winner?.body.refresh_token as string)).body.error).toBe('invalid_grant');
    });

    it('stores refresh tokens only as hashes', async () => {
      const viewer = await user(['viewer']);
      const issued = (await login(viewer.email)).body.refresh_token as string;
      const { rows } = await state.blocks.platform.db.query<{ row: string }>('SELECT row_to_json(r)::text AS row FROM refresh_tokens r');
      expect(rows.length).toBeGreaterThan(0);
      for (const { row } of rows) expect(row).not.toContain(issued.slice(4));
    });
  });
}

describe('password grant left off (the default)', () => {
  const { state, token, client, user } = harness({}, async () => ({ env: {}, drop: async () => undefined }));

  it('answers unsupported_grant_type and leaves it out of discovery; refresh_token stays served', async () => {
    const viewer = await user(['viewer']);
    const answer = await token(
      { grant_type: 'password', username: viewer.email, password: PASSWORD },
      await client('acme', SCOPES.roles.admin),
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'OAUTH_UNSUPPORTED_GRANT_TYPE', error: 'unsupported_grant_type' });
    const res = await fetch(`${state.blocks.urls.gateway}/.well-known/openid-configuration`);
    expect(((await res.json()) as { grant_types_supported: string[] }).grant_types_supported).toEqual([
      'client_credentials',
      'refresh_token',
    ]);
  });
});
