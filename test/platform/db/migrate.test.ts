import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/platform/db/port.ts';
import { createPostgresDatabase } from '../../../src/platform/db/postgres.ts';
import { DatabaseError } from '../../../src/platform/db/errors.ts';
import { MigrationError, readMigrations, runMigrations } from '../../../src/platform/db/migrate.ts';
import { probeService } from '../../support/services.ts';
import { migrateAsOneSequence } from '../../support/legacy-migrations.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { createTestPglite } from '../../support/databases.ts';

const postgres = await probeService('postgres');

let root: string;
let dirs = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'blocks-migrations-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A migrations directory holding exactly `files`. */
async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = join(root, `set-${(dirs += 1)}`);
  await mkdir(dir);
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}

const BASE = {
  '0001_widgets.sql': 'CREATE TABLE widgets (id integer PRIMARY KEY);',
  '0002_widget_names.sql': `ALTER TABLE widgets ADD COLUMN name text;
    INSERT INTO widgets VALUES (1, 'first');`,
};

const history = async (db: Database): Promise<unknown[]> =>
  (await db.query('SELECT module, version, name FROM schema_migrations ORDER BY module, version')).rows;

describe('readMigrations', () => {
  it('reads NNNN_name.sql files in version order and ignores other files', async () => {
    const dir = await migrationsDir({ '0002_b.sql': 'SELECT 2', '0001_a.sql': 'SELECT 1', 'README.md': '# notes' });
    const migrations = await readMigrations(dir);
    expect(migrations.map((m) => [m.version, m.name])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    expect(migrations[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a misnamed migration and a repeated version', async () => {
    await expect(readMigrations(await migrationsDir({ '1_short.sql': 'SELECT 1' }))).rejects.toBeInstanceOf(MigrationError);
    await expect(readMigrations(await migrationsDir({ '0001_Upper.sql': 'SELECT 1' }))).rejects.toBeInstanceOf(MigrationError);
    await expect(readMigrations(await migrationsDir({ '0001_a.sql': 'SELECT 1', '0001_b.sql': 'SELECT 2' }))).rejects.toThrow(
      /share version 1/,
    );
  });
});

function migrationTests(open: () => Promise<Database>): void {
  let db: Database;
  beforeEach(async () => {
    db = await open();
  });
  afterEach(async () => {
    await db.close();
  });

  it('applies pending migrations in order, recording each, and nothing the second time', async () => {
    const dir = await migrationsDir(BASE);
    expect(await runMigrations(db, [{ module: 'test', dir }])).toEqual([
      { module: 'test', version: 1, name: 'widgets' },
      { module: 'test', version: 2, name: 'widget_names' },
    ]);
    expect((await db.query('SELECT id, name FROM widgets')).rows).toEqual([{ id: 1, name: 'first' }]);
    expect(await runMigrations(db, [{ module: 'test', dir }])).toEqual([]);
    expect(await history(db)).toEqual([
      { module: 'test', version: 1, name: 'widgets' },
      { module: 'test', version: 2, name: 'widget_names' },
    ]);
  });

  it('applies only the migrations added since the last run', async () => {
    await runMigrations(db, [{ module: 'test', dir: await migrationsDir(BASE) }]);
    const later = await migrationsDir({ ...BASE, '0003_gadgets.sql': 'CREATE TABLE gadgets (id integer);' });
    expect(await runMigrations(db, [{ module: 'test', dir: later }])).toEqual([{ module: 'test', version: 3, name: 'gadgets' }]);
  });

  it('leaves no trace of a failing migration and keeps the ones before it', async () => {
    const broken = await migrationsDir({
      ...BASE,
      '0003_half.sql': 'CREATE TABLE half_done (id integer); SELECT * FROM no_such_table;',
    });
    const error = await runMigrations(db, [{ module: 'test', dir: broken }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(await history(db)).toEqual([
      { module: 'test', version: 1, name: 'widgets' },
      { module: 'test', version: 2, name: 'widget_names' },
    ]);
    const { rows } = await db.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'half_done'`);
    expect(rows).toEqual([{ n: 0 }]);

    const fixed = await migrationsDir({ ...BASE, '0003_half.sql': 'CREATE TABLE half_done (id integer);' });
    expect(await runMigrations(db, [{ module: 'test', dir: fixed }])).toEqual([{ module: 'test', version: 3, name: 'half' }]);
  });

  it('refuses to run when an applied migration was edited', async () => {
    await runMigrations(db, [{ module: 'test', dir: await migrationsDir(BASE) }]);
    const edited = await migrationsDir({
      ...BASE,
      '0001_widgets.sql': 'CREATE TABLE widgets (id bigint PRIMARY KEY);',
      '0003_gadgets.sql': 'CREATE TABLE gadgets (id integer);',
    });
    await expect(runMigrations(db, [{ module: 'test', dir: edited }])).rejects.toThrow(/test\/0001_widgets was edited/);
    expect(await history(db)).toHaveLength(2);
  });

  it('carries on, with a warning, when the database has migrations this release does not know', async () => {
    const newer = await migrationsDir({ ...BASE, '0003_gadgets.sql': 'CREATE TABLE gadgets (id integer);' });
    await runMigrations(db, [{ module: 'test', dir: newer }]);
    const warnings: unknown[] = [];
    const logger = { warn: (obj: unknown) => void warnings.push(obj), info: () => undefined };
    expect(await runMigrations(db, [{ module: 'test', dir: await migrationsDir(BASE) }], { logger })).toEqual([]);
    expect(warnings).toEqual([{ migrations: ['test/3'] }]);
  });

  it('keeps two modules apart that number their migrations alike, applying them in the order given', async () => {
    const first = await migrationsDir({ '0001_gizmos.sql': 'CREATE TABLE gizmos (id integer PRIMARY KEY);' });
    // The second module's migration needs the first's table: the order given (dependencies first) is the order applied.
    const second = await migrationsDir({ '0001_gizmo_parts.sql': 'CREATE TABLE gizmo_parts (gizmo integer REFERENCES gizmos (id));' });
    const sources = [
      { module: 'gizmos', dir: first },
      { module: 'parts', dir: second },
    ];
    expect(await runMigrations(db, sources)).toEqual([
      { module: 'gizmos', version: 1, name: 'gizmos' },
      { module: 'parts', version: 1, name: 'gizmo_parts' },
    ]);
    expect(await runMigrations(db, sources)).toEqual([]);
    await expect(runMigrations(db, [...sources, { module: 'parts', dir: first }])).rejects.toThrow(/two migration folders .* parts/);
  });

  it('adopts a history numbered in one sequence: what was applied keeps its identity and never runs again', async () => {
    // What releases before modules applied, from one folder, in one sequence.
    const files = {
      '0001_widgets.sql': BASE['0001_widgets.sql'],
      '0002_gadgets.sql': 'CREATE TABLE gadgets (id integer PRIMARY KEY);',
      '0003_widget_names.sql': BASE['0002_widget_names.sql'],
    };
    await migrateAsOneSequence(db, await readMigrations(await migrationsDir(files)));
    // The same files, moved into two modules' folders with their numbers, and a new one in each.
    const widgets = await migrationsDir({
      '0001_widgets.sql': files['0001_widgets.sql'],
      '0003_widget_names.sql': files['0003_widget_names.sql'],
      '0004_widget_colours.sql': 'ALTER TABLE widgets ADD COLUMN colour text;',
    });
    const gadgets = await migrationsDir({
      '0002_gadgets.sql': files['0002_gadgets.sql'],
      '0003_gadget_sizes.sql': 'ALTER TABLE gadgets ADD COLUMN size integer;',
    });
    const sources = [
      { module: 'widgets', dir: widgets },
      { module: 'gadgets', dir: gadgets },
    ];
    // Running 0001 again would fail (CREATE TABLE without IF NOT EXISTS): only the new ones run.
    expect(await runMigrations(db, sources)).toEqual([
      { module: 'widgets', version: 4, name: 'widget_colours' },
      { module: 'gadgets', version: 3, name: 'gadget_sizes' },
    ]);
    expect(await history(db)).toEqual([
      { module: 'gadgets', version: 2, name: 'gadgets' },
      { module: 'gadgets', version: 3, name: 'gadget_sizes' },
      { module: 'widgets', version: 1, name: 'widgets' },
      { module: 'widgets', version: 3, name: 'widget_names' },
      { module: 'widgets', version: 4, name: 'widget_colours' },
    ]);
    expect(await runMigrations(db, sources)).toEqual([]);
  });
}

describe('runMigrations', () => {
  describe('on PGlite', () => {
    migrationTests(() => createTestPglite('blank'));
  });

  describe.skipIf(!postgres.ok)('on PostgreSQL', () => {
    let testDb: TestDatabase;
    beforeEach(async () => {
      testDb = await createTestDatabase();
    });
    afterEach(async () => {
      await testDb.drop();
    });
    migrationTests(() => createPostgresDatabase({ url: testDb.url, poolMax: 2 }));

    it('applies each migration once when several processes start at the same moment', async () => {
      const dir = await migrationsDir({
        ...BASE,
        '0003_slow.sql': 'SELECT pg_sleep(0.2); CREATE TABLE slow (id integer);',
        '0004_after.sql': 'CREATE TABLE after_slow (id integer);',
      });
      const replicas = await Promise.all(Array.from({ length: 4 }, () => createPostgresDatabase({ url: testDb.url, poolMax: 1 })));
      try {
        const applied = await Promise.all(replicas.map((replica) => runMigrations(replica, [{ module: 'test', dir }])));
        const versions = applied.flat().map((m) => m.version);
        expect(versions.sort()).toEqual([1, 2, 3, 4]);
        expect(await history(replicas[0]!)).toHaveLength(4);
      } finally {
        await Promise.all(replicas.map((replica) => replica.close()));
      }
    });
  });
});
