import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { type IdentityModule } from '../../../src/core/identity/index.ts';
import { startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { blocksDatabases } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';
import { scopes as SCOPES } from '../../support/registry.ts';

const postgres = await probeService('postgres');
const ADMIN = SCOPES.tenantAdmin;
const PASSWORD = 'correct horse battery staple';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

describe('roles', () => {
  it("are bundles of known scopes; admin holds every known scope but the operator's; no role, no scope", () => {
    for (const scopes of Object.values(SCOPES.roles)) for (const scope of scopes) expect(SCOPES.known).toContain(scope);
    expect([...SCOPES.roles.admin].sort()).toEqual(SCOPES.known.filter((scope) => !SCOPES.operator.includes(scope)).sort());
    for (const scopes of Object.values(SCOPES.roles)) for (const scope of SCOPES.operator) expect(scopes).not.toContain(scope);
    expect(SCOPES.roles.viewer.some((scope) => scope.endsWith(':write') || scope.endsWith(':admin') || scope === 'ai:invoke')).toBe(false);
    expect(SCOPES.roles.developer).toEqual(expect.arrayContaining([...SCOPES.roles.viewer]));
    expect(SCOPES.scopesOfRoles([])).toEqual([]);
    expect(SCOPES.scopesOfRoles(['viewer', 'no-such-role'])).toEqual([...SCOPES.roles.viewer].sort());
    expect(SCOPES.scopesOfRoles(['viewer', 'operator'])).toEqual([...new Set([...SCOPES.roles.viewer, ...SCOPES.roles.operator])].sort());
  });
});

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`users admin API (${setup.name})`, () => {
    let blocks: RunningBlocks;
    let identity: IdentityModule;
    let creds: TestCredentials;
    let drop: () => Promise<void>;

    const call = async (method: string, path: string, options: { tenant?: string; body?: unknown; scopes?: string[] } = {}) => {
      const res = await fetch(`${blocks.urls.gateway}/api/v1/identity${path}`, {
        method,
        headers: {
          ...(await creds.headers(options.tenant ?? 'acme', options.scopes ?? ADMIN)),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      const text = await res.text();
      return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) } satisfies Answer;
    };
    const events = async (type: string): Promise<Array<Record<string, unknown>>> =>
      (
        await blocks.platform.db.query<{ payload: Record<string, unknown> }>(
          'SELECT payload FROM events WHERE event_type = $1 ORDER BY sequence',
          [type],
        )
      ).rows.map((r) => r.payload);
    const eventCount = async (): Promise<number> =>
      (await blocks.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE event_type LIKE 'identity.user.%'"))
        .rows[0]?.n ?? 0;
    let emails = 0;
    const email = (): string => `user${++emails}-${Math.random().toString(36).slice(2, 8)}@example.com`;

    beforeAll(async () => {
      const db = await setup.open();
      drop = db.drop;
      blocks = await startTestBlocks({ config: testConfig(db.env), roles: ['gateway'] });
      identity = blocks.identity;
      creds = testCredentials(blocks);
    });
    afterAll(async () => {
      await blocks?.close();
      await drop?.();
    });

    it('creates a user with roles; the answer, the table and the audit event never carry the password', async () => {
      const address = email();
      const created = await call('POST', '/users', {
        body: { email: `  ${address.toUpperCase()}`.trim(), password: PASSWORD, roles: ['viewer', 'developer', 'viewer'] },
      });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      expect(created.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
        email: address,
        roles: ['developer', 'viewer'],
        scopes: SCOPES.scopesOfRoles(['developer']),
        created_at: expect.any(String) as unknown,
      });

      const { rows } = await blocks.platform.db.query<{ row: string; password_hash: string }>(
        'SELECT row_to_json(u)::text AS row, password_hash FROM users u WHERE id = $1',
        [id],
      );
      expect(rows[0]?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      expect(rows[0]?.row).not.toContain(PASSWORD);
      const audit = await events('identity.user.created');
      expect(audit).toContainEqual(
        expect.objectContaining({ tenant: 'acme', user_id: id, email: address, roles: ['developer', 'viewer'] }),
      );
      expect(JSON.stringify(audit)).not.toContain(PASSWORD);
      expect(JSON.stringify(audit)).not.toContain('argon2id');

      const read = await call('GET', `/users/${id}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
      const listed = await call('GET', '/users');
      expect(listed.body.items).toContainEqual(created.body);
      expect(JSON.stringify(listed.body)).not.toMatch(/password|argon2/);
    });

    it('signs the user in by email in any case, with the scopes of its roles; a user without roles gets none', async () => {
      const address = email();
      await call('POST', '/users', { body: { email: address, password: PASSWORD, roles: ['viewer'] } });
      const user = await identity.users.authenticate('acme', address.toUpperCase(), PASSWORD);
      expect(user?.scopes).toEqual(SCOPES.scopesOfRoles(['viewer']));
      expect(await identity.users.authenticate('acme', address, `${PASSWORD}!`)).toBeNull();
      expect(await identity.users.authenticate('acme', `nobody-${address}`, PASSWORD)).toBeNull();
      expect(await identity.users.authenticate('other-tenant', address, PASSWORD)).toBeNull();

      const bare = email();
      const created = await call('POST', '/users', { body: { email: bare, password: PASSWORD } });
      expect(created.body).toMatchObject({ roles: [], scopes: [] });
      expect((await identity.users.authenticate('acme', bare, PASSWORD))?.scopes).toEqual([]);
    });

    it('answers 400 naming the field for a short password, an unknown role, a bad email or an extra field, and writes nothing', async () => {
      const before = await eventCount();
      const short = await call('POST', '/users', { body: { email: email(), password: 'elevenchars' } });
      expect(short.status).toBe(400);
      expect(short.body.code).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(short.body.errors)).toContain('/password');
      // Eleven characters, one outside the BMP (two UTF-16 units): counted as characters, it is too short.
      const emoji = await call('POST', '/users', { body: { email: email(), password: 'ten chars😀' } });
      expect(emoji.status).toBe(400);
      expect(JSON.stringify(emoji.body.errors)).toContain('/password');
      const role = await call('POST', '/users', { body: { email: email(), password: PASSWORD, roles: ['viewer', 'root'] } });
      expect(role.status).toBe(400);
      expect(JSON.stringify(role.body.errors)).toContain('/roles/1');
      const bad = await call('POST', '/users', { body: { email: 'not-an-email', password: PASSWORD } });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body.errors)).toContain('/email');
      const extra = await call('POST', '/users', { body: { email: email(), password: PASSWORD, password_hash: '$argon2id$…' } });
      expect(extra.status).toBe(400);
      expect(JSON.stringify(extra.body)).toContain('password_hash');
      const tenant = await call('POST', '/users', { body: { email: email(), password: PASSWORD, tenant: 'other' } });
      expect(tenant.status).toBe(400);
      expect(await eventCount()).toBe(before);
    });

    it('refuses a second user with the same email in the tenant (409, whatever the case), not in another tenant', async () => {
      const address = email();
      expect((await call('POST', '/users', { body: { email: address, password: PASSWORD } })).status).toBe(201);
      const again = await call('POST', '/users', { body: { email: address.toUpperCase(), password: `${PASSWORD}2` } });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'USER_EXISTS', email: address });
      expect((await call('POST', '/users', { tenant: 'elsewhere', body: { email: address, password: PASSWORD } })).status).toBe(201);
      // The first user's password is the one that works in acme.
      expect(await identity.users.authenticate('acme', address, PASSWORD)).not.toBeNull();
      expect(await identity.users.authenticate('acme', address, `${PASSWORD}2`)).toBeNull();
    });

    it('refuses roles granting scopes the admin does not hold, and changes nothing', async () => {
      const address = email();
      const refused = await call('POST', '/users', {
        scopes: ['identity:admin', 'ai:read'],
        body: { email: address, password: PASSWORD, roles: ['developer'] },
      });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', field: 'roles' });
      expect(await identity.users.authenticate('acme', address, PASSWORD)).toBeNull();
    });

    it('changes roles, resets the password and deletes, each audited', async () => {
      const address = email();
      const id = (await call('POST', '/users', { body: { email: address, password: PASSWORD, roles: ['viewer'] } })).body.id as string;

      const promoted = await call('PUT', `/users/${id}/roles`, { body: { roles: ['operator', 'viewer'] } });
      expect(promoted.status).toBe(200);
      expect(promoted.body).toMatchObject({ roles: ['operator', 'viewer'], scopes: SCOPES.scopesOfRoles(['operator', 'viewer']) });
      expect((await identity.users.authenticate('acme', address, PASSWORD))?.scopes).toContain('ai:budgets');
      expect(await events('identity.user.roles_changed')).toContainEqual(
        expect.objectContaining({ user_id: id, roles: ['operator', 'viewer'], previous_roles: ['viewer'] }),
      );
      const badRoles = await call('PUT', `/users/${id}/roles`, { body: { roles: ['superuser'] } });
      expect(badRoles.status).toBe(400);

      const newPassword = 'another long passphrase';
      const reset = await call('POST', `/users/${id}/password`, { body: { password: newPassword } });
      expect(reset.status).toBe(204);
      expect(await identity.users.authenticate('acme', address, PASSWORD)).toBeNull();
      expect(await identity.users.authenticate('acme', address, newPassword)).not.toBeNull();
      const resets = await events('identity.user.password_reset');
      expect(resets).toContainEqual(expect.objectContaining({ user_id: id }));
      expect(JSON.stringify(resets)).not.toContain(newPassword);
      expect((await call('POST', `/users/${id}/password`, { body: { password: 'short' } })).status).toBe(400);

      expect((await call('DELETE', `/users/${id}`)).status).toBe(204);
      expect((await call('GET', `/users/${id}`)).body).toMatchObject({ status: 404, code: 'USER_NOT_FOUND' });
      expect((await call('DELETE', `/users/${id}`)).status).toBe(404);
      expect(await identity.users.authenticate('acme', address, newPassword)).toBeNull();
      expect(await events('identity.user.deleted')).toContainEqual(expect.objectContaining({ user_id: id, email: address }));
    });

    it("tenant B can neither see nor touch tenant A's users: 404 everywhere, exactly like a missing id, and nothing changes", async () => {
      const address = email();
      const created = await call('POST', '/users', { tenant: 'tenant-a', body: { email: address, password: PASSWORD, roles: ['viewer'] } });
      const id = created.body.id as string;
      const before = await eventCount();

      const asB = [
        await call('GET', `/users/${id}`, { tenant: 'tenant-b' }),
        await call('PUT', `/users/${id}/roles`, { tenant: 'tenant-b', body: { roles: ['admin'] } }),
        await call('POST', `/users/${id}/password`, { tenant: 'tenant-b', body: { password: 'taken over by b!' } }),
        await call('DELETE', `/users/${id}`, { tenant: 'tenant-b' }),
      ];
      expect(asB.map((answer) => answer.status)).toEqual([404, 404, 404, 404]);
      const missing = await call('GET', '/users/00000000-0000-4000-8000-000000000000', { tenant: 'tenant-b' });
      for (const answer of asB) {
        expect(answer.body.code).toBe(missing.body.code);
        expect(answer.body.title).toBe(missing.body.title);
      }
      expect((await call('GET', '/users', { tenant: 'tenant-b' })).body.items).toEqual([]);

      expect(await eventCount()).toBe(before);
      expect((await call('GET', `/users/${id}`, { tenant: 'tenant-a' })).body).toEqual(created.body);
      expect(await identity.users.authenticate('tenant-a', address, PASSWORD)).not.toBeNull();
    });

    it('needs identity:admin: 403 for a key without it, 401 without a credential', async () => {
      const viewer = await call('GET', '/users', { scopes: ['ai:read', 'ai:models:read'] });
      expect(viewer.status).toBe(403);
      expect(viewer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'identity:admin' });
      const create = await call('POST', '/users', { scopes: ['ai:read'], body: { email: email(), password: PASSWORD, roles: ['admin'] } });
      expect(create.status).toBe(403);
      const anonymous = await fetch(`${blocks.urls.gateway}/api/v1/identity/users`);
      expect(anonymous.status).toBe(401);
    });

    it('pages through users with a cursor', async () => {
      for (let i = 0; i < 3; i++) await call('POST', '/users', { tenant: 'pager', body: { email: email(), password: PASSWORD } });
      const first = await call('GET', '/users?limit=2', { tenant: 'pager' });
      expect(first.body.items).toHaveLength(2);
      const second = await call('GET', `/users?limit=2&cursor=${first.body.next_cursor as string}`, { tenant: 'pager' });
      expect(second.body.items).toHaveLength(1);
      expect(second.body.next_cursor).toBeNull();
      expect((await call('GET', '/users?cursor=nope', { tenant: 'pager' })).body).toMatchObject({ status: 400, field: 'cursor' });
    });
  });
}
