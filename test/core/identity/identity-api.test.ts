import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { type IdentityModule } from '../../../src/core/identity/index.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { blocksDatabases } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';
import { scopes as SCOPES } from '../../support/registry.ts';
import { withMigratedPglite } from '../../support/templates.ts';

const postgres = await probeService('postgres');

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`identity admin API on the gateway (${setup.name})`, () => {
    const dir = tempDir('blocks-identity');
    let blocks: RunningBlocks;
    let identity: IdentityModule;
    let creds: TestCredentials;
    let drop: () => Promise<void>;

    /** As the tenant's admin: a key holding identity:admin (one per tenant, listed among its keys). */
    const call = async (
      method: string,
      path: string,
      options: { tenant?: string; body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<Answer> => {
      const res = await fetch(`${blocks.urls.gateway}/api/v1/identity${path}`, {
        method,
        headers: {
          ...(options.headers ?? (await creds.headers(options.tenant ?? 'acme', SCOPES.tenantAdmin))),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    };
    const auditEvents = async (): Promise<string[]> =>
      (
        await blocks.platform.db.query<{ event_type: string }>(
          "SELECT event_type FROM events WHERE event_type LIKE 'identity.%' ORDER BY sequence",
        )
      ).rows.map((r) => r.event_type);

    beforeAll(async () => {
      const db = await setup.open();
      drop = db.drop;
      blocks = await startTestBlocks({
        config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path), ...db.env }),
        roles: ['gateway'],
      });
      identity = blocks.identity;
      creds = testCredentials(blocks);
    });
    const adminKeyId = (tenant = 'acme'): Promise<string> => creds.keyId(tenant, SCOPES.tenantAdmin);
    afterAll(async () => {
      await blocks?.close();
      await drop?.();
      dir.remove();
    });

    it('made the default tenant and an admin client on first start, whose secret authenticates', async () => {
      const first = identity.firstStart();
      expect(first).not.toBeNull();
      expect(first?.tenant).toBe('default');
      expect(await identity.authenticateClient(first?.clientId as string, first?.clientSecret as string)).toEqual({
        tenant: 'default',
        clientId: first?.clientId,
        // Its tenant's admin, and the platform operator (it is the only way in on a new database).
        scopes: SCOPES.known,
      });
      // Besides the service identities the gateway registers (role `service`), it is the only client.
      const { rows } = await blocks.platform.db.query<{ secret_hash: string }>(
        "SELECT secret_hash FROM oauth_clients WHERE NOT ('service' = ANY (roles))",
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]?.secret_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    });

    it('creates, lists, reads and revokes API keys; the key is in the create answer only', async () => {
      const created = await call('POST', '/api-keys', { body: { name: 'ci', scopes: ['ai:invoke', 'ai:read', 'ai:invoke'] } });
      expect(created.status).toBe(201);
      expect(created.headers.get('cache-control')).toBe('no-store');
      const key = created.body.key as string;
      const id = created.body.id as string;
      expect(created.body.scopes).toEqual(['ai:invoke', 'ai:read']);
      expect(await identity.verifyApiKey(key)).toEqual({ tenant: 'acme', keyId: id, scopes: ['ai:invoke', 'ai:read'] });

      const listed = await call('GET', '/api-keys');
      expect(listed.status).toBe(200);
      expect(JSON.stringify(listed.body)).not.toContain(key);
      // The admin key the test calls with is the tenant's other key.
      expect(listed.body.items).toHaveLength(2);
      expect(listed.body.items).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: await adminKeyId() }),
          expect.objectContaining({ id, prefix: key.slice(0, 11), revoked_at: null }),
        ]),
      );
      expect((await call('GET', `/api-keys/${id}`)).body).not.toHaveProperty('key');

      const revoked = await call('DELETE', `/api-keys/${id}`);
      expect(revoked.status).toBe(200);
      expect(revoked.body.revoked_at).toEqual(expect.any(String));
      expect(await identity.verifyApiKey(key)).toBeNull();
      expect(await auditEvents()).toEqual(expect.arrayContaining(['identity.api_key.created', 'identity.api_key.revoked']));
      // The revoked key no longer opens anything, not even the route that revoked it.
      const withRevoked = await call('GET', '/api-keys', { headers: { 'x-api-key': key } });
      expect(withRevoked.status).toBe(401);
      expect(withRevoked.body.code).toBe('INVALID_CREDENTIALS');
      // The audit trail names the admin key that acted.
      const { rows } = await blocks.platform.db.query<{ payload: { actor: string | null } }>(
        "SELECT payload FROM events WHERE event_type = 'identity.api_key.revoked' AND payload->>'key_id' = $1",
        [id],
      );
      expect(rows.map((r) => r.payload.actor)).toEqual([await adminKeyId()]);
    });

    it('refuses callers without identity:admin, and a tenant header naming another tenant, before anything changes', async () => {
      // Keys made first: making one is itself audited.
      const readerKey = await creds.headers('acme', ['ai:read']);
      const before = (await auditEvents()).length;
      const anonymous = await call('POST', '/api-keys', { headers: {}, body: { name: 'x' } });
      expect(anonymous.status).toBe(401);
      expect(anonymous.body.code).toBe('AUTHENTICATION_REQUIRED');
      const reader = await call('POST', '/api-keys', { headers: readerKey, body: { name: 'x' } });
      expect(reader.status).toBe(403);
      expect(reader.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'identity:admin' });
      const mismatch = await call('GET', '/api-keys', {
        headers: { ...(await creds.headers('acme', SCOPES.tenantAdmin)), 'x-blocks-tenant': 'tenant-b' },
      });
      expect(mismatch.status).toBe(403);
      expect(mismatch.body.code).toBe('TENANT_MISMATCH');
      // Naming its own tenant is allowed.
      const own = await call('GET', '/api-keys', {
        headers: { ...(await creds.headers('acme', SCOPES.tenantAdmin)), 'x-blocks-tenant': 'acme' },
      });
      expect(own.status).toBe(200);
      expect((await auditEvents()).length).toBe(before);
    });

    it('answers 400 naming the field for bad input, and writes nothing', async () => {
      const before = (await auditEvents()).length;
      const unknown = await call('POST', '/api-keys', { body: { name: 'x', scopes: ['ai:invoke', 'root'] } });
      expect(unknown.status).toBe(400);
      expect(unknown.body).toMatchObject({ code: 'UNKNOWN_SCOPE', field: 'scopes', scopes: ['root'] });
      const past = await call('POST', '/api-keys', { body: { name: 'x', expires_at: '2001-01-01T00:00:00Z' } });
      expect(past.body).toMatchObject({ status: 400, code: 'INVALID_IDENTITY_INPUT', field: 'expires_at' });
      const noName = await call('POST', '/api-keys', { body: { scopes: [] } });
      expect(noName.status).toBe(400);
      expect(noName.body.code).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(noName.body)).toContain('name');
      const extra = await call('POST', '/clients', { body: { name: 'x', client_secret: 'mine' } });
      expect(extra.status).toBe(400);
      expect(JSON.stringify(extra.body)).toContain('client_secret');
      const badCursor = await call('GET', '/api-keys?cursor=zzz');
      expect(badCursor.body).toMatchObject({ status: 400, field: 'cursor' });
      expect((await auditEvents()).length).toBe(before);
    });

    it('OAuth clients: least privilege by default, secret shown once, rotation retires the old secret, delete', async () => {
      const created = await call('POST', '/clients', { body: { name: 'svc' } });
      expect(created.status).toBe(201);
      expect(created.body.scopes).toEqual([]);
      const clientId = created.body.client_id as string;
      const adminClients = (await call('GET', '/clients')).body.items as unknown[];
      const secret = created.body.client_secret as string;
      expect(await identity.authenticateClient(clientId, secret)).toEqual({ tenant: 'acme', clientId, scopes: [] });
      expect(await identity.authenticateClient(clientId, `${secret}x`)).toBeNull();
      expect(await identity.authenticateClient('cl_000000000000000000000000', secret)).toBeNull();
      expect(adminClients).toEqual([expect.objectContaining({ client_id: clientId })]);
      expect(adminClients).toEqual([expect.not.objectContaining({ client_secret: expect.anything() as unknown })]);

      const rotated = await call('POST', `/clients/${clientId}/rotate-secret`);
      expect(rotated.status).toBe(200);
      const newSecret = rotated.body.client_secret as string;
      expect(newSecret).not.toBe(secret);
      expect(await identity.authenticateClient(clientId, secret)).toBeNull();
      expect(await identity.authenticateClient(clientId, newSecret)).not.toBeNull();

      const stored = await blocks.platform.db.query<{ row: string }>(
        'SELECT row_to_json(c)::text AS row FROM oauth_clients c WHERE client_id = $1',
        [clientId],
      );
      expect(stored.rows[0]?.row).not.toContain(newSecret.slice(4));

      expect((await call('DELETE', `/clients/${clientId}`)).status).toBe(204);
      expect(await identity.authenticateClient(clientId, newSecret)).toBeNull();
      expect((await call('GET', `/clients/${clientId}`)).status).toBe(404);
      expect(await auditEvents()).toEqual(
        expect.arrayContaining(['identity.client.created', 'identity.client.secret_rotated', 'identity.client.deleted']),
      );
    });

    it("tenant B can neither see nor touch tenant A's keys and clients: 404 on every route, and nothing changes", async () => {
      const key = await call('POST', '/api-keys', { tenant: 'tenant-a', body: { name: 'a', scopes: ['ai:read'] } });
      const client = await call('POST', '/clients', { tenant: 'tenant-a', body: { name: 'a', scopes: ['ai:read'] } });
      const keyId = key.body.id as string;
      const clientId = client.body.client_id as string;
      await creds.headers('tenant-b', SCOPES.tenantAdmin);
      const events = (await auditEvents()).length;

      const asB = [
        await call('GET', `/api-keys/${keyId}`, { tenant: 'tenant-b' }),
        await call('DELETE', `/api-keys/${keyId}`, { tenant: 'tenant-b' }),
        await call('GET', `/clients/${clientId}`, { tenant: 'tenant-b' }),
        await call('POST', `/clients/${clientId}/rotate-secret`, { tenant: 'tenant-b' }),
        await call('DELETE', `/clients/${clientId}`, { tenant: 'tenant-b' }),
      ];
      expect(asB.map((a) => a.status)).toEqual([404, 404, 404, 404, 404]);
      // Indistinguishable from an id that exists nowhere.
      const missing = await call('GET', '/api-keys/00000000-0000-4000-8000-000000000000', { tenant: 'tenant-b' });
      expect(missing.body.code).toBe(asB[0]?.body.code);
      expect(missing.body.title).toBe(asB[0]?.body.title);
      // B sees only the admin key it calls with.
      expect(((await call('GET', '/api-keys', { tenant: 'tenant-b' })).body.items as Array<{ id: string }>).map((k) => k.id)).toEqual([
        await adminKeyId('tenant-b'),
      ]);
      expect((await call('GET', '/clients', { tenant: 'tenant-b' })).body.items).toEqual([]);

      expect(await identity.verifyApiKey(key.body.key as string)).toMatchObject({ tenant: 'tenant-a', keyId });
      expect(await identity.authenticateClient(clientId, client.body.client_secret as string)).toMatchObject({ tenant: 'tenant-a' });
      expect((await call('GET', `/api-keys/${keyId}`, { tenant: 'tenant-a' })).body.revoked_at).toBeNull();
      expect((await auditEvents()).length).toBe(events);
    });

    it('pages through keys with a cursor', async () => {
      // Three made here and the admin key the test calls with.
      for (let i = 0; i < 3; i++) await call('POST', '/api-keys', { tenant: 'pager', body: { name: `k${i}` } });
      const first = await call('GET', '/api-keys?limit=3', { tenant: 'pager' });
      expect(first.body.items).toHaveLength(3);
      const second = await call('GET', `/api-keys?limit=3&cursor=${first.body.next_cursor as string}`, { tenant: 'pager' });
      expect(second.body.items).toHaveLength(1);
      expect(second.body.next_cursor).toBeNull();
      const ids = [...(first.body.items as Array<{ id: string }>), ...(second.body.items as Array<{ id: string }>)].map((k) => k.id);
      expect(new Set(ids).size).toBe(4);
    });
  });
}
