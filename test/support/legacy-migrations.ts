import type { Database } from '../../src/platform/db/port.ts';
import type { Migration } from '../../src/platform/db/migrate.ts';

/**
 * Migrates `db` as releases before module-owned migrations did: one `schema_migrations` sequence
 * keyed by version alone, each migration applied and recorded in that order.
 */
export async function migrateAsOneSequence(db: Database, migrations: readonly Migration[]): Promise<void> {
  await db.exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`);
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    await db.exec(migration.sql);
    await db.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      migration.checksum,
    ]);
  }
}
