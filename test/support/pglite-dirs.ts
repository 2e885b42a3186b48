import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import type { Database } from '../../src/platform/db/port.ts';
import { copyPgliteTemplate } from './templates.ts';

/** PGlite data directories for one test file, each a copy of one initialised once. */
export interface PgliteDirs {
  /** A data directory of its own, ready to open. */
  fresh(): Promise<string>;
  /** Removes every directory handed out. */
  remove(): Promise<void>;
}

/**
 * Creating a PGlite cluster takes seconds; copying one takes milliseconds. This file's template starts
 * as a copy of the run's blank cluster (`./templates.ts`; created here when there is none), and
 * `prepare` runs once on it (e.g. migrations), so every copy starts in that state.
 */
export async function createPgliteDirs(prefix: string, prepare?: (db: Database) => Promise<void>): Promise<PgliteDirs> {
  const parent = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const template = join(parent, 'template');
  await copyPgliteTemplate('blank', template);
  const db = await createPgliteDatabase({ dataDir: template });
  try {
    await prepare?.(db);
  } finally {
    await db.close();
  }
  let made = 0;
  return {
    async fresh() {
      const dataDir = join(parent, `data-${++made}`);
      await cp(template, dataDir, { recursive: true });
      return dataDir;
    },
    remove: () => rm(parent, { recursive: true, force: true }),
  };
}
