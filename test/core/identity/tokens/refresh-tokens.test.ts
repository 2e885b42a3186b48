import { randomUUID } from 'node:crypto';
import { beforeEach, expect, it } from 'vitest';
import { createRefreshTokens, type RefreshGrant, type RefreshTokens } from '../../../../src/core/identity/tokens/refresh-tokens.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import { forEachDatabase } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';
import { manualClock } from './support.ts';

const postgres = await probeService('postgres');
const TTL = 60 * 60_000;
const context = { correlationId: 'test', actor: null };

forEachDatabase(postgres, (fixture) => {
  const clock = manualClock(Date.parse('2026-03-01T12:00:00Z'));
  const make = (db: Database = fixture.db()): RefreshTokens => createRefreshTokens({ db, clock, ttlMs: TTL });
  let grant: RefreshGrant;

  beforeEach(async () => {
    // Tokens reference a real tenant, client and user (their deletion ends the sessions).
    const tenant = `t${randomUUID().slice(0, 8)}`;
    const clientId = `cl_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const userId = randomUUID();
    const db = fixture.db();
    await db.query('INSERT INTO tenants (id, name) VALUES ($1, $1)', [tenant]);
    await db.query("INSERT INTO oauth_clients (client_id, tenant, name, secret_hash) VALUES ($1, $2, 'app', 'x')", [clientId, tenant]);
    await db.query("INSERT INTO users (id, tenant, email, password_hash) VALUES ($1, $2, 'u@example.com', 'x')", [userId, tenant]);
    grant = { tenant, clientId, subject: userId, userId, scopes: ['ai:read', 'docs:read'] };
  });

  const familySize = async (familyId: string): Promise<number> =>
    (await fixture.db().query<{ n: number }>('SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1', [familyId])).rows[0]
      ?.n ?? 0;

  it('issues brt_ tokens stored only as their SHA-256, and reads back the grant they stand for', async () => {
    const tokens = make();
    const raw = await tokens.issue(grant);
    expect(raw).toMatch(/^brt_[A-Za-z0-9_-]{43}$/);
    const stored = await tokens.find(raw);
    expect(stored).toMatchObject({ ...grant, used: false, expiresAt: clock.now() + TTL });
    const dump = await fixture.db().query<{ row: string }>('SELECT row_to_json(r)::text AS row FROM refresh_tokens r');
    for (const { row } of dump.rows) expect(row).not.toContain(raw.slice(4));
    expect(await tokens.find(`${raw.slice(0, -1)}${raw.endsWith('A') ? 'B' : 'A'}`)).toBeNull();
    expect(await tokens.find('brt_short')).toBeNull();
  });

  it('rotates: the old token is marked used, its successor joins the family with a fresh lifetime and the same grant', async () => {
    const tokens = make();
    const first = await tokens.issue(grant);
    const stored = await tokens.find(first);
    clock.advance(60_000);
    const rotation = await tokens.rotate(stored!, context);
    expect(rotation.outcome).toBe('rotated');
    const next = rotation.outcome === 'rotated' ? rotation.token : '';
    expect(next).not.toBe(first);
    expect(await tokens.find(first)).toMatchObject({ used: true });
    expect(await tokens.find(next)).toMatchObject({ ...grant, used: false, familyId: stored?.familyId, expiresAt: clock.now() + TTL });
  });

  it('a second rotation of one token is reuse: the whole family is deleted and the audit event says so', async () => {
    const tokens = make();
    const first = await tokens.find(await tokens.issue(grant));
    const rotation = await tokens.rotate(first!, context);
    expect(await tokens.rotate(first!, context)).toEqual({ outcome: 'reused' });
    expect(await familySize(first!.familyId)).toBe(0);
    expect(await tokens.find(rotation.outcome === 'rotated' ? rotation.token : '')).toBeNull();
    const { rows } = await fixture
      .db()
      .query<{ payload: Record<string, unknown> }>("SELECT payload FROM events WHERE event_type = 'identity.refresh_token.reused'");
    expect(rows.map((r) => r.payload)).toEqual([
      expect.objectContaining({
        tenant: grant.tenant,
        family_id: first!.familyId,
        client_id: grant.clientId,
        reason: 'reused',
        revoked_tokens: 2,
      }),
    ]);
  });

  it('refuses to rotate an expired token, and purges a user’s expired tokens at its next grant', async () => {
    const tokens = make();
    const old = await tokens.find(await tokens.issue(grant));
    clock.advance(TTL);
    expect(await tokens.rotate(old!, context)).toEqual({ outcome: 'refused' });
    await tokens.issue(grant);
    expect(await familySize(old!.familyId)).toBe(0);
  });

  it('ends the sessions of a deleted user or client with them', async () => {
    const tokens = make();
    const ofUser = await tokens.issue(grant);
    await fixture.db().query('DELETE FROM users WHERE id = $1', [grant.userId]);
    expect(await tokens.find(ofUser)).toBeNull();
    const ofClient = await tokens.issue({ ...grant, userId: null, subject: grant.clientId });
    await fixture.db().query('DELETE FROM oauth_clients WHERE client_id = $1', [grant.clientId]);
    expect(await tokens.find(ofClient)).toBeNull();
  });

  it('of two replicas rotating one token at once, exactly one succeeds and the other revokes the family', async () => {
    const here = make();
    const there = make(await fixture.anotherHandle());
    const stored = await here.find(await here.issue(grant));
    const outcomes = await Promise.all([here.rotate(stored!, context), there.rotate(stored!, context)]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['reused', 'rotated']);
    expect(await familySize(stored!.familyId)).toBe(0);
  });
});
