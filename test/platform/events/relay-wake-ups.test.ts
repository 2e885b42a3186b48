import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Client } from 'pg';
import type { Database } from '../../../src/platform/db/port.ts';
import { createPostgresDatabase } from '../../../src/platform/db/postgres.ts';
import { LISTENER_APPLICATION_NAME } from '../../../src/platform/db/postgres-listener.ts';
import { KERNEL_MIGRATIONS_DIR, runMigrations } from '../../../src/platform/db/migrate.ts';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { appendEvent } from '../../../src/platform/events/outbox.ts';
import { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from '../../../src/platform/events/relay.ts';
import type { SystemEvent } from '../../../src/platform/events/types.ts';
import { probeService } from '../../support/services.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { createTestPglite } from '../../support/databases.ts';
import { createRecordingBus, type RecordingBus } from './recording-bus.ts';
import { createManualClock } from './manual-clock.ts';

const postgres = await probeService('postgres');
const MIGRATIONS = [{ module: 'platform', dir: KERNEL_MIGRATIONS_DIR }];

/** Far longer than any wait below: an event that goes out in time was woken for, not polled for. */
const POLL_MS = 60_000;
const SOON = { timeout: 5_000, interval: 20 } as const;

/** Appends one event in a transaction, as a module's store does; nobody calls relay.notify(). */
const appendThrough = (db: Database, n: number): Promise<SystemEvent> =>
  db.transaction((tx) =>
    appendEvent(tx, { event_type: 'orders.placed', source_service: 'test.orders', payload: { n }, correlation_id: `req-${n}` }),
  );

const published = (bus: RecordingBus): (string | undefined)[] => bus.published.map((message) => message.id);

describe('outbox relay woken by the database', () => {
  const relays: OutboxRelay[] = [];
  const buses: RecordingBus[] = [];
  const newRelay = (options: Omit<OutboxRelayOptions, 'bus'>): { relay: OutboxRelay; bus: RecordingBus } => {
    const bus = createRecordingBus(createMemoryBus());
    const relay = createOutboxRelay({ bus, ...options });
    buses.push(bus);
    relays.push(relay);
    return { relay, bus };
  };
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
  });

  describe.skipIf(!postgres.ok)('two replicas on one PostgreSQL database', () => {
    let testDb: TestDatabase;
    let replicaA: Database;
    let replicaB: Database;
    beforeAll(async () => {
      testDb = await createTestDatabase();
      const open = () => createPostgresDatabase({ url: testDb.url, poolMax: 4, listenReconnectMs: { min: 50, max: 500 } });
      replicaA = await open();
      replicaB = await open();
      await runMigrations(replicaA, MIGRATIONS);
    });
    afterAll(async () => {
      await replicaA?.close();
      await replicaB?.close();
      await testDb?.drop();
    });

    /** B's relay, started and idle: its first pass (after it began listening) has published `warm-up`. */
    const startRelayOnB = async (options: Partial<OutboxRelayOptions> = {}): Promise<RecordingBus> => {
      const warmUp = await appendThrough(replicaA, 0);
      const { relay, bus } = newRelay({ db: replicaB, pollIntervalMs: POLL_MS, exclusive: false, ...options });
      relay.start();
      await vi.waitFor(() => expect(published(bus)).toEqual([warmUp.event_id]), SOON);
      return bus;
    };

    it("publishes at once an event committed through another replica's store, though it polls once a minute", async () => {
      const bus = await startRelayOnB();
      const event = await appendThrough(replicaA, 1);
      await vi.waitFor(() => expect(published(bus)).toContain(event.event_id), SOON);
    });

    it('after the server killed its listening connection, is woken once reconnected and publishes what was committed meanwhile', async () => {
      const bus = await startRelayOnB();
      const admin = new Client({ connectionString: testDb.url });
      await admin.connect();
      try {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
          [LISTENER_APPLICATION_NAME],
        );
        expect(rows).toHaveLength(1);
      } finally {
        await admin.end();
      }
      const event = await appendThrough(replicaA, 2);
      await vi.waitFor(() => expect(published(bus)).toContain(event.event_id), SOON);
      const later = await appendThrough(replicaA, 3);
      await vi.waitFor(() => expect(published(bus)).toContain(later.event_id), SOON);
    });

    it('without listening, the same event waits for the poll (what the wake-up saves)', async () => {
      const clock = createManualClock();
      const bus = await startRelayOnB({ listen: false, clock });
      await vi.waitFor(() => expect(clock.sleepers).toBe(1), SOON);
      const event = await appendThrough(replicaA, 4);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(published(bus)).not.toContain(event.event_id);
      clock.advance(POLL_MS);
      await vi.waitFor(() => expect(published(bus)).toContain(event.event_id), SOON);
    });
  });

  describe('on PGlite', () => {
    let db: Database;
    beforeAll(async () => {
      db = await createTestPglite('blank');
      await runMigrations(db, MIGRATIONS);
    });
    afterAll(async () => {
      await db?.close();
    });
    beforeEach(async () => {
      await db.query('TRUNCATE events RESTART IDENTITY');
    });

    it('publishes at once an event appended without relay.notify(), though it polls once a minute', async () => {
      const { relay, bus } = newRelay({ db, pollIntervalMs: POLL_MS });
      relay.start();
      await vi.waitFor(async () => expect(await relay.backlog()).toBe(0), SOON);
      const event = await appendThrough(db, 5);
      await vi.waitFor(() => expect(published(bus)).toEqual([event.event_id]), SOON);
    });

    it('polls on its clock: an event nobody announces goes out once the poll interval has passed on the clock', async () => {
      const clock = createManualClock();
      const { relay, bus } = newRelay({ db, pollIntervalMs: POLL_MS, listen: false, clock });
      relay.start();
      await vi.waitFor(() => expect(clock.sleepers).toBe(1), SOON);
      const event = await appendThrough(db, 7);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(bus.attempts).toEqual([]);
      clock.advance(POLL_MS - 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(bus.attempts).toEqual([]);
      clock.advance(1);
      await vi.waitFor(() => expect(published(bus)).toEqual([event.event_id]), SOON);
    });
  });
});
