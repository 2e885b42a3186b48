import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../logger.ts';
import type { Database, Transaction } from './port.ts';

/** The migrations shipped with Blocks (`migrations/` at the project root). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/** One migration file: `NNNN_name.sql`. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** sha256 of the file, recorded when applied so an edited migration is noticed. */
  readonly checksum: string;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
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
  version: number;
  name: string;
  checksum: string;
}

async function lockHistory(tx: Transaction): Promise<HistoryRow[]> {
  // Held until this transaction ends: a second process starting at the same moment waits here,
  // then sees what the first applied. It also serialises the CREATE TABLE IF NOT EXISTS below,
  // which is not safe to run concurrently.
  await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
  await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  const { rows } = await tx.query<HistoryRow>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
  return rows;
}

/** Throws when an applied migration's file changed; returns the first unapplied one and versions this release lacks. */
function inspectHistory(
  migrations: readonly Migration[],
  history: readonly HistoryRow[],
): { next: Migration | undefined; unknown: HistoryRow[] } {
  const known = new Map(migrations.map((migration) => [migration.version, migration]));
  const unknown: HistoryRow[] = [];
  for (const row of history) {
    const migration = known.get(row.version);
    if (migration === undefined) unknown.push(row);
    else if (migration.checksum !== row.checksum) {
      throw new MigrationError(`migration ${row.version}_${row.name} was edited after it was applied; add a new migration instead`);
    }
  }
  const applied = new Set(history.map((row) => row.version));
  return { next: migrations.find((migration) => !applied.has(migration.version)), unknown };
}

/**
 * Applies the migrations in `dir` that the database has not recorded, in version order, each in its
 * own transaction together with its `schema_migrations` row: a failing migration leaves no trace and
 * the error is rethrown, the ones before it stay applied. Safe to run from several processes at once.
 * Returns what this call applied (empty when the database was up to date).
 * Throws `MigrationError` when an applied migration's file was changed.
 */
export async function runMigrations(
  db: Database,
  dir: string,
  options: { logger?: Pick<Logger, 'warn' | 'info'> } = {},
): Promise<AppliedMigration[]> {
  const migrations = await readMigrations(dir);
  const applied: AppliedMigration[] = [];
  for (let round = 0; ; round += 1) {
    const next = await db.transaction(async (tx) => {
      const { next: migration, unknown } = inspectHistory(migrations, await lockHistory(tx));
      if (round === 0 && unknown.length > 0) {
        // A newer release migrated this database; forward-only migrations keep older code working.
        options.logger?.warn({ versions: unknown.map((row) => row.version) }, 'database has migrations this release does not know');
      }
      if (migration === undefined) return undefined;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return migration;
    });
    if (next === undefined) return applied;
    options.logger?.info({ version: next.version, name: next.name }, 'applied migration');
    applied.push({ version: next.version, name: next.name });
  }
}
