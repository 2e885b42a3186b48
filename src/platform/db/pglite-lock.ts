import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

/** The lock a process holds on a PGlite data directory while it has the directory open. */
export interface DataDirLock {
  /** Removes the lock file, unless another process has since taken it over. Safe to call twice. */
  release(): Promise<void>;
}

/** The name of the lock file inside the data directory. */
export const LOCK_FILE = 'blocks.lock';

const errnoCode = (error: unknown): unknown => (error as NodeJS.ErrnoException | null)?.code;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** True when a process with this pid exists (EPERM: it exists but belongs to another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/** The pid in a lock file, `undefined` when it is gone, `null` when it holds no pid (yet). */
async function readHolder(path: string): Promise<number | null | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** Reads the holder, giving one that has created the file but not yet written its pid 100 ms to do so. */
async function waitForHolder(path: string): Promise<number | null | undefined> {
  for (let tries = 0; tries < 10; tries += 1) {
    const holder = await readHolder(path);
    if (holder !== null) return holder;
    await sleep(10);
  }
  return null;
}

async function createExclusively(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(String(process.pid));
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Moves a stale lock (holding `stalePid`, or nothing) out of the way. Renaming is atomic, so of two
 * processes taking over the same stale lock only one moves it; if what was moved turns out to be a
 * fresh lock another process created meanwhile, it is put back (link fails rather than overwrite).
 */
async function removeStale(path: string, stalePid: number | null): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    if ((await readHolder(aside)) !== stalePid) await link(aside, path);
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
  } finally {
    await unlink(aside);
  }
}

/**
 * Takes `<dataDir>/blocks.lock`, created exclusively and holding this process's pid, so two processes
 * never open one data directory (PGlite would corrupt it). A lock left by a process that is gone
 * (crash, SIGKILL) or that holds this process's own pid (a restarted container reuses pids) is taken
 * over. Throws `data directory <dir> is in use by process <pid>` when a live process holds it.
 * The directory must exist.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, LOCK_FILE);
  let locked = false;
  for (let attempt = 0; attempt < 20 && !locked; attempt += 1) {
    locked = await createExclusively(path);
    if (locked) break;
    const holder = await waitForHolder(path);
    if (holder === undefined) continue;
    if (holder !== null && holder !== process.pid && isAlive(holder)) {
      throw new Error(`data directory ${dataDir} is in use by process ${holder}`);
    }
    await removeStale(path, holder);
  }
  if (!locked) throw new Error(`data directory ${dataDir}: could not take over the stale lock ${path}`);

  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        if ((await readHolder(path)) !== process.pid) return;
        await unlink(path).catch((error: unknown) => {
          if (errnoCode(error) !== 'ENOENT') throw error;
        });
      })();
      return released;
    },
  };
}
