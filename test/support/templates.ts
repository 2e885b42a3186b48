import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { MigrationSource } from '../../src/platform/db/migrate.ts';
import { MIGRATIONS } from './registry.ts';

/**
 * Databases made once per test run (by `./global-setup.ts`) and copied by every test that needs one,
 * instead of each test creating a PGlite cluster (seconds of WASM initdb) and migrating it:
 * - `blank`: a PGlite data directory as a new cluster is, nothing migrated;
 * - `migrated`: the same with every migration of the test registry applied;
 * - `postgres`: a PostgreSQL database migrated the same way, cloned with CREATE DATABASE … TEMPLATE.
 * Their identity is the hash of the migration files they were made from: a test whose migrations no
 * longer hash the same (a file edited while `vitest --watch` runs) is given none, and makes its own.
 */
export interface Templates {
  readonly identity: string;
  readonly pglite: { readonly blank: string; readonly migrated: string };
  /** Absent when PostgreSQL was unreachable at the start of the run. */
  readonly postgres?: string | undefined;
}

/** How global setup hands the templates to the test workers (and to processes they spawn). */
export const TEMPLATES_ENV = 'BLOCKS_TEST_TEMPLATES';

const PGLITE_VERSION = (
  JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * sha256 over every source's module name and its `.sql` files' names and contents, in order, and the
 * PGlite version that wrote the data directories: any change to a migration makes a new identity.
 */
export function migrationsIdentity(sources: readonly MigrationSource[] = MIGRATIONS): string {
  const hash = createHash('sha256').update(`pglite ${PGLITE_VERSION}\n`);
  for (const source of sources) {
    hash.update(`module ${source.module}\n`);
    for (const file of readdirSync(source.dir)
      .filter((name) => name.endsWith('.sql'))
      .sort()) {
      hash
        .update(`file ${file}\n`)
        .update(readFileSync(join(source.dir, file)))
        .update('\n');
    }
  }
  return hash.digest('hex').slice(0, 16);
}

let current: { readonly value: Templates | undefined } | undefined;

/** The templates of this run, or undefined when there are none or they were made from other migrations. */
export function templates(): Templates | undefined {
  if (current === undefined) {
    const raw = process.env[TEMPLATES_ENV];
    const made = raw === undefined ? undefined : (JSON.parse(raw) as Templates);
    current = { value: made !== undefined && made.identity === migrationsIdentity() ? made : undefined };
  }
  return current.value;
}

// The adapter's lock file is removed on close; should one ever be left, a copy must not inherit it.
const withoutLock = (source: string): boolean => basename(source) !== 'blocks.lock';

/** Copies a PGlite template to `target` (which must not exist); false when there is no template. */
export async function copyPgliteTemplate(kind: 'blank' | 'migrated', target: string): Promise<boolean> {
  const template = templates()?.pglite[kind];
  if (template === undefined) return false;
  await cp(template, target, { recursive: true, filter: withoutLock });
  return true;
}

/** {@link copyPgliteTemplate} for synchronous callers (`testConfig`). */
export function copyPgliteTemplateSync(kind: 'blank' | 'migrated', target: string): boolean {
  const template = templates()?.pglite[kind];
  if (template === undefined) return false;
  cpSync(template, target, { recursive: true, filter: withoutLock });
  return true;
}

/** A directory of its own under the system's temporary directory, and how to remove it. */
export async function scratchDir(prefix: string): Promise<{ readonly path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Readies `dataDir`, a Blocks data directory, for a start that finds the test registry's migrations
 * applied: its PGlite data (`<dataDir>/pglite`, where Blocks keeps it) is copied from the run's
 * migrated template, unless it holds some already (a restart keeps what the last start wrote).
 * Returns `dataDir`.
 */
export function withMigratedPglite(dataDir: string): string {
  const pglite = join(dataDir, 'pglite');
  if (!existsSync(pglite)) copyPgliteTemplateSync('migrated', pglite);
  return dataDir;
}
