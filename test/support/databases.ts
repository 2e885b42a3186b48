import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import type { Database } from '../../src/platform/db/port.ts';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { createPostgresDatabase } from '../../src/platform/db/postgres.ts';
import { runMigrations } from '../../src/platform/db/migrate.ts';
import type { ServiceProbe } from './services.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { MIGRATIONS } from './registry.ts';
import { copyPgliteTemplate, scratchDir } from './templates.ts';

export { MIGRATIONS };

/**
 * A PGlite database on a data directory of its own, copied from the run's template (`./templates.ts`):
 * `migrated` (the default) has every migration of the test registry applied, `blank` none, as a new
 * cluster. Copying takes a fraction of a second where creating a cluster takes seconds. Without a
 * current template it is created (and migrated) here, to the same state. Closing it removes the directory.
 */
export async function createTestPglite(kind: 'migrated' | 'blank' = 'migrated'): Promise<Database> {
  const dir = await scratchDir('blocks-test-pglite');
  const dataDir = join(dir.path, 'data');
  let db: Database;
  try {
    const copied = await copyPgliteTemplate(kind, dataDir);
    db = await createPgliteDatabase({ dataDir });
    if (!copied && kind === 'migrated') await runMigrations(db, MIGRATIONS);
  } catch (error) {
    await dir.remove();
    throw error;
  }
  let closed: Promise<void> | undefined;
  return {
    ...db,
    close: () => (closed ??= db.close().finally(() => dir.remove())),
  };
}

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

/** Runs `define` once against a migrated PGlite and once against a migrated PostgreSQL database of its own. */
export function forEachDatabase(postgres: ServiceProbe, define: (fixture: DbFixture) => void): void {
  describe('on PGlite', () => {
    let db: Database;
    beforeAll(async () => {
      db = await createTestPglite();
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
      testDb = await createTestDatabase('blocks_test', { migrated: true });
      db = await createPostgresDatabase({ url: testDb.url, poolMax: 4 });
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

/**
 * Embedded PGlite, and a PostgreSQL database of its own, for suites that start Blocks on each. Both
 * start migrated (PGlite by `testConfig`'s data directory, PostgreSQL cloned from the run's template),
 * so a start finds nothing to apply.
 */
export function blocksDatabases(postgres: ServiceProbe): readonly BlocksDatabase[] {
  return [
    { name: 'PGlite', available: true, open: async () => ({ env: {}, drop: async () => undefined }) },
    {
      name: 'PostgreSQL',
      available: postgres.ok,
      open: async () => {
        const db = await createTestDatabase('blocks_test', { migrated: true });
        return { env: { DATABASE_URL: db.url }, drop: () => db.drop() };
      },
    },
  ];
}
