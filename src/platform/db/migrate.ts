import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Database, Transaction } from './port.ts';

/** The kernel's own migrations (the outbox, the in-process bus, idempotency keys). */
export const KERNEL_MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * A folder of migrations and the module owning them. A migration is known by module and version,
 * so two modules built in parallel never collide on a number.
 */
export interface MigrationSource {
  readonly module: string;
  readonly dir: string;
}

/** One migration file: `NNNN_name.sql`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** sha256 of the file, recorded when applied so an edited migration is noticed. */
  readonly checksum: string;
}

export interface AppliedMigration {
  readonly module: string;
  readonly version: number;
  readonly name: string;
}

/** A module's migration, as applied in order across modules. */
interface SourcedMigration extends Migration {
  readonly module: string;
}

/** A migration directory or the database's migration history is inconsistent; nothing was applied. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

// Any constant works: it only has to be the same in every process migrating this database.
const MIGRATION_LOCK_KEY = 7_241_190_331;

/** Reads `dir`'s migrations in version order; throws on a misnamed `.sql` file or a repeated version. */
export async function readMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (match === null) throw new MigrationError(`${join(dir, file)} is not named NNNN_name.sql`);
    const version = Number(match[1]);
    if (migrations.some((migration) => migration.version === version)) {
      throw new MigrationError(`two migrations in ${dir} share version ${version}`);
    }
    const sql = await readFile(join(dir, file), 'utf8');
    const checksum = createHash('sha256').update(sql).digest('hex');
    migrations.push({ version, name: match[2] ?? file, sql, checksum });
  }
  return migrations;
}

interface HistoryRow {
  module: string;
  version: number;
  name: string;
  checksum: string;
}

const keyOf = (module: string, version: number): string => `${module}/${version}`;

async function lockHistory(tx: Transaction, migrations: readonly SourcedMigration[]): Promise<HistoryRow[]> {
  // Held until this transaction ends: a second process starting at the same moment waits here,
  // then sees what the first applied. It also serialises the CREATE TABLE IF NOT EXISTS below,
  // which is not safe to run concurrently.
  await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
  await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    module text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (module, version)
  )`);
  await adoptGlobalHistory(tx, migrations);
  const { rows } = await tx.query<HistoryRow>('SELECT module, version, name, checksum FROM schema_migrations ORDER BY module, version');
  return rows;
}

/**
 * Databases migrated before migrations belonged to modules numbered them in one sequence
 * (`version` alone). The files moved into their modules' folders with their numbers and names
 * unchanged, so each recorded row is given the module now holding the file of that version and
 * name: nothing applied runs again.
 */
async function adoptGlobalHistory(tx: Transaction, migrations: readonly SourcedMigration[]): Promise<void> {
  const { rows } = await tx.query(
    `SELECT 1 FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'schema_migrations' AND column_name = 'module'`,
  );
  if (rows.length > 0) return;
  await tx.exec('ALTER TABLE schema_migrations ADD COLUMN module text');
  const { rows: recorded } = await tx.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations');
  for (const row of recorded) {
    const owner = migrations.find((migration) => migration.version === row.version && migration.name === row.name);
    // A version no module has (a newer release's): kept, under a name that says where it came from.
    await tx.query('UPDATE schema_migrations SET module = $1 WHERE version = $2', [owner?.module ?? 'global', row.version]);
  }
  await tx.exec(`ALTER TABLE schema_migrations ALTER COLUMN module SET NOT NULL;
    ALTER TABLE schema_migrations DROP CONSTRAINT schema_migrations_pkey;
    ALTER TABLE schema_migrations ADD PRIMARY KEY (module, version)`);
}

/** Throws when an applied migration's file changed; returns the first unapplied one and what this release lacks. */
function inspectHistory(
  migrations: readonly SourcedMigration[],
  history: readonly HistoryRow[],
): { next: SourcedMigration | undefined; unknown: HistoryRow[] } {
  const known = new Map(migrations.map((migration) => [keyOf(migration.module, migration.version), migration]));
  const unknown: HistoryRow[] = [];
  for (const row of history) {
    const migration = known.get(keyOf(row.module, row.version));
    if (migration === undefined) unknown.push(row);
    else if (migration.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${row.module}/${String(row.version).padStart(4, '0')}_${row.name} was edited after it was applied; add a new migration instead`,
      );
    }
  }
  const applied = new Set(history.map((row) => keyOf(row.module, row.version)));
  return { next: migrations.find((migration) => !applied.has(keyOf(migration.module, migration.version))), unknown };
}

/** Every source's migrations, source by source (the registry orders sources by dependency), each in version order. */
async function readSources(sources: readonly MigrationSource[]): Promise<SourcedMigration[]> {
  const modules = new Set<string>();
  const all: SourcedMigration[] = [];
  for (const source of sources) {
    if (modules.has(source.module)) throw new MigrationError(`two migration folders are given for module ${source.module}`);
    modules.add(source.module);
    for (const migration of await readMigrations(source.dir)) all.push({ ...migration, module: source.module });
  }
  return all;
}

/**
 * Applies the migrations of `sources` that the database has not recorded, module by module in the
 * order given and each module's in version order, each in its own transaction together with its `schema_migrations` row: a failing migration leaves no trace and
 * the error is rethrown, the ones before it stay applied. Safe to run from several processes at once.
 * Returns what this call applied (empty when the database was up to date).
 * Throws `MigrationError` when an applied migration's file was changed.
 */
export async function runMigrations(
  db: Database,
  sources: readonly MigrationSource[],
  options: { logger?: Pick<Logger, 'warn' | 'info'> } = {},
): Promise<AppliedMigration[]> {
  const migrations = await readSources(sources);
  const applied: AppliedMigration[] = [];
  for (let round = 0; ; round += 1) {
    const next = await db.transaction(async (tx) => {
      const { next: migration, unknown } = inspectHistory(migrations, await lockHistory(tx, migrations));
      if (round === 0 && unknown.length > 0) {
        // A newer release (or a module no longer registered) migrated this database; forward-only migrations keep older code working.
        options.logger?.warn(
          { migrations: unknown.map((row) => `${row.module}/${row.version}`) },
          'database has migrations this release does not know',
        );
      }
      if (migration === undefined) return undefined;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (module, version, name, checksum) VALUES ($1, $2, $3, $4)', [
        migration.module,
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return migration;
    });
    if (next === undefined) return applied;
    options.logger?.info({ module: next.module, version: next.version, name: next.name }, 'applied migration');
    applied.push({ module: next.module, version: next.version, name: next.name });
  }
}
