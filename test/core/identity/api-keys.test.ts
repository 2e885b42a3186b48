import { expect, it } from 'vitest';
import { createApiKeys, type ApiKeys } from '../../../src/core/identity/api-keys.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import type { Database } from '../../../src/platform/db/port.ts';
import { forEachDatabase } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';
import { manualClock } from '../../autonomous/ai-router/budgets/support.ts';
import { scopes as SCOPES } from '../../support/registry.ts';

const postgres = await probeService('postgres');
const logger = createLogger({ level: 'silent', service: 'test', version: 'test' });

forEachDatabase(postgres, (fixture) => {
  const clock = manualClock('2026-03-01T12:00:00Z');
  const make = (db: Database = fixture.db()): ApiKeys =>
    createApiKeys({ db, clock, logger, onEventAppended: () => undefined, scopes: SCOPES });
  const context = { correlationId: 'test', actor: null };
  const tenant = (): string => `t${Math.random().toString(36).slice(2, 10)}`;

  it('creates a key shown once as bk_ + 43 base64url characters, and verifies it to its tenant, id and scopes', async () => {
    const keys = make();
    const t = tenant();
    const created = await keys.create(t, { name: 'ci', scopes: ['ai:invoke'], expiresAt: null }, context);
    expect(created.key).toMatch(/^bk_[A-Za-z0-9_-]{43}$/);
    expect(created.prefix).toBe(created.key.slice(0, 11));
    expect(await keys.verify(created.key)).toEqual({ tenant: t, keyId: created.id, scopes: ['ai:invoke'] });
    // A second replica (its own cache, empty) verifies from the database.
    expect(await make(await fixture.anotherHandle()).verify(created.key)).toMatchObject({ tenant: t, keyId: created.id });
    const listed = await keys.list(t, 50);
    expect(listed.items).toHaveLength(1);
    expect(listed.items[0]).not.toHaveProperty('key');
    expect(JSON.stringify(listed)).not.toContain(created.key);
  });

  it('never stores the raw key: not in the table, not in the audit event', async () => {
    const keys = make();
    const created = await keys.create(tenant(), { name: 'secret', scopes: [], expiresAt: null }, context);
    const dump = await fixture.db().query<{ row: string }>('SELECT row_to_json(k)::text AS row FROM api_keys k');
    const events = await fixture.db().query<{ payload: unknown }>("SELECT payload FROM events WHERE event_type LIKE 'identity.%'");
    const secretPart = created.key.slice(11);
    expect(dump.rows.length).toBeGreaterThan(0);
    for (const text of [...dump.rows.map((r) => r.row), JSON.stringify(events.rows)]) {
      expect(text).not.toContain(created.key);
      expect(text).not.toContain(secretPart);
    }
    expect(events.rows).toContainEqual({ payload: expect.objectContaining({ key_id: created.id, prefix: created.prefix }) as unknown });
  });

  it('refuses unknown, malformed and tampered keys', async () => {
    const keys = make();
    const created = await keys.create(tenant(), { name: 'x', scopes: [], expiresAt: null }, context);
    const last = created.key.at(-1) === 'A' ? 'B' : 'A';
    expect(await keys.verify(`${created.key.slice(0, -1)}${last}`)).toBeNull();
    expect(await keys.verify('bk_short')).toBeNull();
    expect(await keys.verify('')).toBeNull();
    expect(await keys.verify(`${created.key}x`)).toBeNull();
  });

  it('revokes at once on this replica, writes identity.api_key.revoked, and a second revoke changes nothing', async () => {
    const keys = make();
    const t = tenant();
    const created = await keys.create(t, { name: 'x', scopes: [], expiresAt: null }, context);
    expect(await keys.verify(created.key)).not.toBeNull(); // now cached
    const revoked = await keys.revoke(t, created.id, context);
    expect(revoked.revoked_at).not.toBeNull();
    expect(await keys.verify(created.key)).toBeNull();
    expect((await keys.revoke(t, created.id, context)).revoked_at).toBe(revoked.revoked_at);
    const events = await fixture
      .db()
      .query<{ payload: { key_id: string } }>("SELECT payload FROM events WHERE event_type = 'identity.api_key.revoked'");
    expect(events.rows.map((r) => r.payload.key_id)).toEqual([created.id]);
  });

  it("another tenant's key is not found: get and revoke answer API_KEY_NOT_FOUND and nothing changes", async () => {
    const keys = make();
    const a = tenant();
    const b = tenant();
    const created = await keys.create(a, { name: 'a-key', scopes: [], expiresAt: null }, context);
    await expect(keys.get(b, created.id)).rejects.toMatchObject({ code: 'API_KEY_NOT_FOUND', status: 404 });
    await expect(keys.revoke(b, created.id, context)).rejects.toMatchObject({ code: 'API_KEY_NOT_FOUND', status: 404 });
    await expect(keys.get(a, 'not-a-uuid')).rejects.toMatchObject({ code: 'API_KEY_NOT_FOUND' });
    expect((await keys.list(b, 50)).items).toEqual([]);
    expect(await keys.verify(created.key)).toMatchObject({ tenant: a });
    expect((await keys.get(a, created.id)).revoked_at).toBeNull();
  });

  it('refuses an expired key, even one already cached', async () => {
    const keys = make();
    const created = await keys.create(tenant(), { name: 'x', scopes: [], expiresAt: new Date(clock.now() + 60_000) }, context);
    expect(await keys.verify(created.key)).not.toBeNull();
    clock.advance(60_000);
    expect(await keys.verify(created.key)).toBeNull();
    await expect(keys.create(tenant(), { name: 'x', scopes: [], expiresAt: new Date(clock.now() - 1) }, context)).rejects.toMatchObject({
      code: 'INVALID_IDENTITY_INPUT',
      extensions: { field: 'expires_at' },
    });
  });

  it('serves a cached key without reading the database until the cache entry ages out', async () => {
    const keys = createApiKeys({ db: fixture.db(), clock, logger, onEventAppended: () => undefined, scopes: SCOPES, cacheTtlMs: 60_000 });
    const created = await keys.create(tenant(), { name: 'x', scopes: [], expiresAt: null }, context);
    expect(await keys.verify(created.key)).not.toBeNull();
    // Removed behind the cache's back (no event): the cached entry still answers, until its TTL.
    await fixture.db().query('DELETE FROM api_keys WHERE id = $1', [created.id]);
    expect(await keys.verify(created.key)).not.toBeNull();
    clock.advance(60_000);
    expect(await keys.verify(created.key)).toBeNull();
  });

  it('records last use at most once a minute per key, in a batch off the request path', async () => {
    const keys = make();
    const created = await keys.create(tenant(), { name: 'x', scopes: [], expiresAt: null }, context);
    const lastUsed = async (): Promise<string | null> =>
      (
        await fixture.db().query<{ t: Date | null }>('SELECT last_used_at AS t FROM api_keys WHERE id = $1', [created.id])
      ).rows[0]?.t?.toISOString() ?? null;
    const first = clock.now();
    await keys.verify(created.key);
    expect(await lastUsed()).toBeNull(); // not written on the request path
    await keys.flushLastUsed();
    expect(await lastUsed()).toBe(new Date(first).toISOString());
    clock.advance(30_000);
    await keys.verify(created.key);
    await keys.flushLastUsed();
    expect(await lastUsed()).toBe(new Date(first).toISOString());
    clock.advance(30_000);
    await keys.verify(created.key);
    await keys.flushLastUsed();
    expect(await lastUsed()).toBe(new Date(clock.now()).toISOString());
  });
});
