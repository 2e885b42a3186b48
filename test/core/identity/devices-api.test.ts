import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import type { Config } from '../../../src/platform/config/schema.ts';
import { eventually, startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { blocksDatabases } from '../../support/databases.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../support/real-services.ts';
import { probeService } from '../../support/services.ts';

const postgres = await probeService('postgres');
const realServices = await probeRealServices();
const ADMIN = ['identity:admin'];
// `fleet` lets in only registered devices; `acme` has no device rule.
const DEVICE_RULES = { auth: { tenants: { fleet: { require_device: true } } } };

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** The identity admin API of one Blocks, as an admin of `tenant` calling from `device`. */
function adminApi(blocks: () => RunningBlocks, creds: () => TestCredentials) {
  return async (method: string, path: string, options: { tenant?: string; device?: string; body?: unknown } = {}): Promise<Answer> => {
    const res = await fetch(`${blocks().urls.gateway}/api/v1/identity${path}`, {
      method,
      headers: {
        ...(await creds().headers(options.tenant ?? 'acme', ADMIN)),
        ...(options.device === undefined ? {} : { 'x-blocks-device': options.device }),
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
}

const CERT_SHA256 = Array.from({ length: 32 }, (_, i) => (i * 7 + 10).toString(16).padStart(2, '0')).join(':');

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`devices admin API (${setup.name})`, () => {
    let blocks: RunningBlocks;
    let creds: TestCredentials;
    let drop: () => Promise<void>;
    const call = adminApi(
      () => blocks,
      () => creds,
    );
    const events = async (type: string): Promise<Array<Record<string, unknown>>> =>
      (
        await blocks.platform.db.query<{ payload: Record<string, unknown> }>(
          'SELECT payload FROM events WHERE event_type = $1 ORDER BY sequence',
          [type],
        )
      ).rows.map((r) => r.payload);
    const eventCount = async (): Promise<number> =>
      (await blocks.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE event_type LIKE 'identity.device.%'"))
        .rows[0]?.n ?? 0;

    beforeAll(async () => {
      const db = await setup.open();
      drop = db.drop;
      blocks = await startTestBlocks({ config: testConfig(db.env, DEVICE_RULES), roles: ['gateway'] });
      creds = testCredentials(blocks);
      // The first device of a tenant that requires one cannot be registered through the API from no device.
      await blocks.identity.devices.register('fleet', { name: 'admin laptop', fingerprint: 'admin-laptop' }, { correlationId: 'test' });
    });
    afterAll(async () => {
      await blocks?.close();
      await drop?.();
    });

    it('registers, lists, reads and deletes devices, each change audited with its fingerprint', async () => {
      const created = await call('POST', '/devices', { body: { name: 'build agent 7', fingerprint: 'agent-7' } });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      expect(created.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
        name: 'build agent 7',
        fingerprint: 'agent-7',
        created_at: expect.any(String) as unknown,
      });
      expect((await call('GET', `/devices/${id}`)).body).toEqual(created.body);
      expect((await call('GET', '/devices')).body.items).toContainEqual(created.body);

      expect((await call('DELETE', `/devices/${id}`)).status).toBe(204);
      expect((await call('GET', `/devices/${id}`)).body).toMatchObject({ status: 404, code: 'DEVICE_NOT_FOUND' });
      expect((await call('DELETE', `/devices/${id}`)).status).toBe(404);
      expect(await events('identity.device.registered')).toContainEqual(
        expect.objectContaining({ tenant: 'acme', device_id: id, fingerprint: 'agent-7', name: 'build agent 7' }),
      );
      expect(await events('identity.device.deleted')).toContainEqual(
        expect.objectContaining({ tenant: 'acme', device_id: id, fingerprint: 'agent-7' }),
      );
    });

    it("stores a certificate's SHA-256 fingerprint as the TLS socket reports it (upper case), so either case registers the same device", async () => {
      const lower = await call('POST', '/devices', { body: { name: 'cert', fingerprint: CERT_SHA256.toLowerCase() } });
      expect(lower.status).toBe(201);
      expect(lower.body.fingerprint).toBe(CERT_SHA256.toUpperCase());
      const upper = await call('POST', '/devices', { body: { name: 'cert again', fingerprint: CERT_SHA256.toUpperCase() } });
      expect(upper.status).toBe(409);
      expect(upper.body).toMatchObject({ code: 'DEVICE_EXISTS' });
    });

    it('answers 400 for a fingerprint with spaces or too long, a missing name or an extra field, and writes nothing', async () => {
      const before = await eventCount();
      const answers = [
        await call('POST', '/devices', { body: { name: 'x', fingerprint: 'has space' } }),
        await call('POST', '/devices', { body: { name: 'x', fingerprint: 'f'.repeat(256) } }),
        await call('POST', '/devices', { body: { name: 'x', fingerprint: '' } }),
        await call('POST', '/devices', { body: { fingerprint: 'no-name' } }),
        await call('POST', '/devices', { body: { name: 'x', fingerprint: 'ok', tenant: 'fleet' } }),
      ];
      expect(answers.map((answer) => answer.status)).toEqual([400, 400, 400, 400, 400]);
      expect(answers.map((answer) => answer.body.code)).toEqual(Array(5).fill('VALIDATION_FAILED'));
      expect(JSON.stringify(answers[0]?.body.errors)).toContain('/fingerprint');
      expect(await eventCount()).toBe(before);
    });

    it("tenant B can neither see nor delete tenant A's devices (404 like a missing id); the same fingerprint is B's own to register", async () => {
      const created = await call('POST', '/devices', { tenant: 'tenant-a', body: { name: 'a', fingerprint: 'shared-id' } });
      const id = created.body.id as string;
      const asB = [
        await call('GET', `/devices/${id}`, { tenant: 'tenant-b' }),
        await call('DELETE', `/devices/${id}`, { tenant: 'tenant-b' }),
      ];
      expect(asB.map((answer) => answer.status)).toEqual([404, 404]);
      const missing = await call('GET', '/devices/00000000-0000-4000-8000-000000000000', { tenant: 'tenant-b' });
      for (const answer of asB) expect(answer.body.code).toBe(missing.body.code);
      expect((await call('GET', '/devices', { tenant: 'tenant-b' })).body.items).toEqual([]);
      expect((await call('GET', `/devices/${id}`, { tenant: 'tenant-a' })).body).toEqual(created.body);
      expect((await call('POST', '/devices', { tenant: 'tenant-b', body: { name: 'b', fingerprint: 'shared-id' } })).status).toBe(201);
    });

    it('a tenant requiring devices lets a device in once registered and refuses it as soon as it is deleted', async () => {
      const asPhone = (): Promise<Answer> => call('GET', '/devices', { tenant: 'fleet', device: 'phone-1' });
      expect((await call('GET', '/devices', { tenant: 'fleet' })).body).toMatchObject({ status: 403, reason: 'device_required' });
      // Asked about before it exists: this replica now remembers "unknown" for a while.
      expect((await asPhone()).body).toMatchObject({ status: 403, code: 'ACCESS_DENIED', reason: 'device_unknown' });

      const phone = await call('POST', '/devices', {
        tenant: 'fleet',
        device: 'admin-laptop',
        body: { name: 'phone', fingerprint: 'phone-1' },
      });
      expect(phone.status).toBe(201);
      expect((await asPhone()).status).toBe(200);

      expect((await call('DELETE', `/devices/${phone.body.id as string}`, { tenant: 'fleet', device: 'admin-laptop' })).status).toBe(204);
      expect((await asPhone()).body).toMatchObject({ status: 403, reason: 'device_unknown' });
      // Another tenant's registration of the same id does not open `fleet`.
      expect((await call('POST', '/devices', { tenant: 'acme', body: { name: 'phone', fingerprint: 'phone-1' } })).status).toBe(201);
      expect((await asPhone()).status).toBe(403);
    });

    it('needs identity:admin', async () => {
      const res = await fetch(`${blocks.urls.gateway}/api/v1/identity/devices`, { headers: await creds.headers('acme', ['ai:read']) });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'identity:admin' });
    });
  });
}

describe.skipIf(!realServices)('devices across two gateway replicas (PostgreSQL, NATS)', () => {
  let services: RealServicesEnv;
  let a: RunningBlocks;
  let b: RunningBlocks;
  let credsA: TestCredentials;
  let credsB: TestCredentials;
  const onA = adminApi(
    () => a,
    () => credsA,
  );
  const onB = adminApi(
    () => b,
    () => credsB,
  );

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const config: Config = testConfig(services.env, DEVICE_RULES);
    [a, b] = await Promise.all([startTestBlocks({ config, roles: ['gateway'] }), startTestBlocks({ config, roles: ['gateway'] })]);
    credsA = testCredentials(a);
    credsB = testCredentials(b);
    await a.identity.devices.register('fleet', { name: 'admin laptop', fingerprint: 'admin-laptop' }, { correlationId: 'test' });
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await services?.cleanup();
  });

  it('a device registered on one replica is let in by the other, and refused there once deleted, though each had cached the opposite', async () => {
    const fromTablet = (): Promise<number> =>
      onB('GET', '/devices', { tenant: 'fleet', device: 'tablet-9' }).then((answer) => answer.status);
    expect(await fromTablet()).toBe(403); // b caches "unknown" for 30 s

    const tablet = await onA('POST', '/devices', {
      tenant: 'fleet',
      device: 'admin-laptop',
      body: { name: 'tablet', fingerprint: 'tablet-9' },
    });
    expect(tablet.status).toBe(201);
    // Well inside b's 30 s cache: the event, not the cache's expiry, changes b's answer.
    expect(await eventually(fromTablet, (status) => status === 200, 5_000)).toBe(200);

    expect((await onA('DELETE', `/devices/${tablet.body.id as string}`, { tenant: 'fleet', device: 'admin-laptop' })).status).toBe(204);
    expect(await eventually(fromTablet, (status) => status === 403, 5_000)).toBe(403);
  });
});
