import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { runMigrations } from '../../src/platform/db/migrate.ts';
import { MIGRATIONS } from './registry.ts';
import { createTemplateDatabase } from './postgres.ts';
import { probeService } from './services.ts';
import { TEMPLATES_ENV, migrationsIdentity, scratchDir, type Templates } from './templates.ts';

/**
 * Vitest global setup: the run's template databases (`./templates.ts`), made once before any test
 * file and removed after the last. A blank PGlite cluster, a migrated copy of it, and a migrated
 * PostgreSQL template database when the server answers (when it does not, the suites that need it
 * skip or, with BLOCKS_REQUIRE_SERVICES=1, fail on their own probes).
 */
export async function setup(): Promise<() => Promise<void>> {
  const identity = migrationsIdentity(MIGRATIONS);
  const dir = await scratchDir(`blocks-templates-${identity}`);
  const blank = join(dir.path, 'pglite-blank');
  const migrated = join(dir.path, 'pglite-migrated');
  const made: Array<() => Promise<void>> = [() => dir.remove()];
  try {
    // Settled both ways before anything is judged, so a failure on one side never leaves the other's behind.
    const [pglite, postgres] = await Promise.allSettled([
      (async () => {
        await (await createPgliteDatabase({ dataDir: blank })).close();
        await cp(blank, migrated, { recursive: true });
        const db = await createPgliteDatabase({ dataDir: migrated });
        try {
          await runMigrations(db, MIGRATIONS);
        } finally {
          await db.close();
        }
      })(),
      (async () => {
        if (!(await probeService('postgres').catch(() => ({ ok: false }))).ok) return undefined;
        const name = `blocks_template_${identity}_${process.pid}`;
        const template = await createTemplateDatabase(name);
        made.push(() => template.drop());
        return name;
      })(),
    ]);
    if (pglite.status === 'rejected') throw pglite.reason;
    if (postgres.status === 'rejected') throw postgres.reason;
    const templates: Templates = {
      identity,
      pglite: { blank, migrated },
      ...(postgres.value === undefined ? {} : { postgres: postgres.value }),
    };
    process.env[TEMPLATES_ENV] = JSON.stringify(templates);
  } catch (error) {
    await Promise.allSettled(made.map((remove) => remove()));
    throw error;
  }
  return async () => {
    await Promise.allSettled(made.map((remove) => remove()));
  };
}
