import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import type { Database } from '../../src/platform/db/port.ts';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { createPostgresDatabase } from '../../src/platform/db/postgres.ts';
import { runMigrations } from '../../src/platform/db/migrate.ts';
import type { ServiceProbe } from './services.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { MIGRATIONS } from './registry.ts';

export { MIGRATIONS };

/** A migrated database for one describe block, emptied of events and inbox rows before each test. */
export interface DbFixture {
  readonly kind: Database['kind'];
  db(): Database;
  /**
   * A second handle on the same database, as another replica would have: a new pool on PostgreSQL,
   * the same handle on PGlite (one process owns its data). Closed by the fixture.
   */
  anotherHandle(): Promise<Database>;
}

const shared = (db: Database): Database => ({ ...db, close: async () => undefined });

/** Runs `define` once against an in-memory PGlite and once against a fresh PostgreSQL database. */
export function forEachDatabase(postgres: ServiceProbe, define: (fixture: DbFixture) => void): void {
  describe('on PGlite', () => {
    let db: Database;
    beforeAll(async () => {
      db = await createPgliteDatabase();
      await runMigrations(db, MIGRATIONS);
    });
    afterAll(async () => {
      await db?.close();
    });
    beforeEach(async () => {
      await db.query('TRUNCATE events, inbox, outbox_dead_letters RESTART IDENTITY');
    });
    define({ kind: 'pglite', db: () => db, anotherHandle: async () => shared(db) });
  });

  describe.skipIf(!postgres.ok)('on PostgreSQL', () => {
    let testDb: TestDatabase;
    let db: Database;
    const others: Database[] = [];
    beforeAll(async () => {
      testDb = await createTestDatabase();
      db = await createPostgresDatabase({ url: testDb.url, poolMax: 4 });
      await runMigrations(db, MIGRATIONS);
    });
    afterAll(async () => {
      await Promise.all(others.map((other) => other.close()));
      await db?.close();
      await testDb?.drop();
    });
    beforeEach(async () => {
      await db.query('TRUNCATE events, inbox, outbox_dead_letters RESTART IDENTITY');
    });
    define({
      kind: 'postgres',
      db: () => db,
      anotherHandle: async () => {
        const other = await createPostgresDatabase({ url: testDb.url, poolMax: 4 });
        others.push(other);
        return other;
      },
    });
  });
}

/** One database a whole Blocks can be started on: the variables for `testConfig`, and how to drop it. */
export interface BlocksDatabase {
  readonly name: 'PGlite' | 'PostgreSQL';
  /** False when PostgreSQL is unreachable (probeService has said so; BLOCKS_REQUIRE_SERVICES makes that a failure). */
  readonly available: boolean;
  readonly open: () => Promise<{ readonly env: Record<string, string>; readonly drop: () => Promise<void> }>;
}

/** Embedded PGlite, and a fresh PostgreSQL database, for suites that start Blocks on each. */
export function blocksDatabases(postgres: ServiceProbe): readonly BlocksDatabase[] {
  return [
    { name: 'PGlite', available: true, open: async () => ({ env: {}, drop: async () => undefined }) },
    {
      name: 'PostgreSQL',
      available: postgres.ok,
      open: async () => {
        const db = await createTestDatabase();
        return { env: { DATABASE_URL: db.url }, drop: () => db.drop() };
      },
    },
  ];
}
