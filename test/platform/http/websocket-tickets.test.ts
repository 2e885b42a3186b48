import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../../../src/platform/db/postgres.ts';
import type { Database } from '../../../src/platform/db/port.ts';
import type { Caller } from '../../../src/platform/http/caller.ts';
import { createWebSocketTickets } from '../../../src/platform/websocket/index.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { probeService } from '../../support/services.ts';
import { createTestPglite } from '../../support/databases.ts';
import { createManualClock } from '../events/manual-clock.ts';

const postgres = await probeService('postgres');
const MIGRATION = readFileSync(new URL('../../../src/platform/migrations/0014_ws_tickets.sql', import.meta.url), 'utf8');
const TTL_MS = 30_000;

const caller: Caller = {
  tenant: 'acme',
  kind: 'api_key',
  subject: 'key-1',
  apiKeyId: 'key-1',
  clientId: null,
  scopes: ['echo:use', 'other:scope'],
};

/** Two handles on one database, as two replicas have: the same one on PGlite (one process owns it). */
interface Handles {
  readonly first: Database;
  readonly second: Database;
}

function ticketSuite(name: string, openHandles: () => Promise<Handles & { close(): Promise<void> }>): void {
  describe(`WebSocket tickets on ${name}`, () => {
    let handles: Handles & { close(): Promise<void> };
    beforeAll(async () => {
      handles = await openHandles();
    });
    afterAll(async () => {
      await handles?.close();
    });

    it('issued by one replica, redeemed by another, once', async () => {
      const clock = createManualClock(Date.now());
      const issuer = createWebSocketTickets({ db: handles.first, clock, ttlMs: TTL_MS });
      const redeemer = createWebSocketTickets({ db: handles.second, clock, ttlMs: TTL_MS });
      const { ticket, scopes } = await issuer.issue(caller);
      expect(scopes).toEqual(caller.scopes);
      // Looking does not spend it (a gateway passing the upgrade on).
      expect(await redeemer.redeem(ticket, { consume: false })).toEqual(caller);
      expect(await redeemer.redeem(ticket, { consume: true })).toEqual(caller);
      expect(await redeemer.redeem(ticket, { consume: true })).toBeNull();
      expect(await issuer.redeem(ticket, { consume: false })).toBeNull();
    });

    it('gives the caller to exactly one of many redemptions racing on two replicas', async () => {
      const clock = createManualClock(Date.now());
      const replicas = [handles.first, handles.second].map((db) => createWebSocketTickets({ db, clock, ttlMs: TTL_MS }));
      const { ticket } = await replicas[0]!.issue(caller);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => replicas[i % 2]!.redeem(ticket, { consume: true })));
      expect(results.filter((result) => result !== null)).toHaveLength(1);
    });

    it('refuses a ticket past its time to live, and stores only its hash', async () => {
      const clock = createManualClock(Date.now());
      const tickets = createWebSocketTickets({ db: handles.first, clock, ttlMs: TTL_MS });
      const { ticket } = await tickets.issue(caller);
      const { rows } = await handles.first.query<{ ticket_hash: string }>('SELECT ticket_hash FROM ws_tickets');
      expect(rows.some((row) => row.ticket_hash.includes(ticket.slice(4)))).toBe(false);
      clock.advance(TTL_MS);
      expect(await tickets.redeem(ticket, { consume: false })).toBeNull();
      expect(await tickets.redeem(ticket, { consume: true })).toBeNull();
    });

    it('narrows to the scopes asked for and never widens', async () => {
      const tickets = createWebSocketTickets({ db: handles.first, clock: createManualClock(Date.now()), ttlMs: TTL_MS });
      const narrowed = await tickets.issue(caller, ['other:scope']);
      expect((await tickets.redeem(narrowed.ticket, { consume: true }))?.scopes).toEqual(['other:scope']);
      await expect(tickets.issue(caller, ['echo:use', 'tenants:admin'])).rejects.toThrow(/tenants:admin/);
    });

    it('sweeps expired tickets when new ones are issued', async () => {
      const clock = createManualClock(Date.now());
      const tickets = createWebSocketTickets({ db: handles.first, clock, ttlMs: TTL_MS });
      await tickets.issue(caller);
      clock.advance(TTL_MS + 1);
      await tickets.issue(caller);
      const { rows } = await handles.first.query<{ n: number }>('SELECT count(*)::int AS n FROM ws_tickets WHERE expires_at < $1', [
        new Date(clock.now()),
      ]);
      expect(rows[0]?.n).toBe(0);
    });

    it('refuses anything not shaped like a ticket', async () => {
      const tickets = createWebSocketTickets({ db: handles.first, clock: createManualClock(Date.now()), ttlMs: TTL_MS });
      expect(await tickets.redeem("wst_' OR 1=1 --", { consume: true })).toBeNull();
      expect(await tickets.redeem('bk_an_api_key', { consume: true })).toBeNull();
    });
  });
}

ticketSuite('PGlite', async () => {
  const db = await createTestPglite('blank');
  await db.exec(MIGRATION);
  return { first: db, second: db, close: () => db.close() };
});

describe.skipIf(!postgres.ok)('on PostgreSQL', () => {
  ticketSuite('PostgreSQL', async () => {
    const created: TestDatabase = await createTestDatabase('blocks_ws_tickets');
    const first = await createPostgresDatabase({ url: created.url, poolMax: 4 });
    const second = await createPostgresDatabase({ url: created.url, poolMax: 4 });
    await first.exec(MIGRATION);
    return {
      first,
      second,
      close: async () => {
        await first.close();
        await second.close();
        await created.drop();
      },
    };
  });
});
