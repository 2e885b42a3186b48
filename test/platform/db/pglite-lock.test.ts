import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../../../src/platform/db/pglite.ts';
import { LOCK_FILE } from '../../../src/platform/db/pglite-lock.ts';
import { createPgliteDirs, type PgliteDirs } from '../../support/pglite-dirs.ts';

const PGLITE = join(import.meta.dirname, '../../../src/platform/db/pglite.ts');

/** A process that opens `dataDir`, writes a row naming itself, reports `ready` and waits to be killed. */
const holderScript = (dataDir: string): string => `
  import { createPgliteDatabase } from ${JSON.stringify(PGLITE)};
  try {
    const db = await createPgliteDatabase({ dataDir: ${JSON.stringify(dataDir)} });
    await db.query('CREATE TABLE IF NOT EXISTS holders (pid integer)');
    await db.query('INSERT INTO holders VALUES ($1)', [process.pid]);
    process.stdout.write('ready\\n');
    setInterval(() => undefined, 60_000);
  } catch (error) {
    process.stdout.write('error: ' + error.message + '\\n');
    process.exit(1);
  }
`;

interface Holder {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The first line the process wrote: `ready` or `error: <message>`. */
  readonly outcome: Promise<string>;
  kill(): Promise<void>;
}

const children = new Set<ChildProcess>();

function startHolder(dataDir: string): Holder {
  const child = spawn(process.execPath, ['--input-type=module', '-e', holderScript(dataDir)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const outcome = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    void exited.then(() => reject(new Error(`holder exited without a word: ${stderr}`)));
  });
  return {
    child,
    pid: child.pid ?? -1,
    outcome,
    async kill() {
      child.kill('SIGKILL');
      await exited;
      children.delete(child);
    },
  };
}

/** The pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid ?? -1;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('PGlite data-directory lock', () => {
  let dirs: PgliteDirs;
  const freshDir = (): Promise<string> => dirs.fresh();

  beforeAll(async () => {
    dirs = await createPgliteDirs('blocks-pglite-lock');
  });
  afterEach(async () => {
    for (const child of children) child.kill('SIGKILL');
    children.clear();
  });
  afterAll(async () => {
    await dirs.remove();
  });

  it('refuses a data directory that another live process holds, naming it; a SIGKILLed holder’s lock is taken over', async () => {
    const dataDir = await freshDir();
    const holder = startHolder(dataDir);
    expect(await holder.outcome).toBe('ready');
    expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(holder.pid));

    await expect(createPgliteDatabase({ dataDir })).rejects.toThrow(`data directory ${dataDir} is in use by process ${holder.pid}`);
    // The refused open left the holder's lock in place.
    expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(holder.pid));

    await holder.kill();
    expect(holder.child.signalCode).toBe('SIGKILL');
    const db = await createPgliteDatabase({ dataDir });
    try {
      expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(process.pid));
      // What the killed holder committed is there.
      expect((await db.query('SELECT pid FROM holders')).rows).toEqual([{ pid: holder.pid }]);
    } finally {
      await db.close();
    }
    expect(await exists(join(dataDir, LOCK_FILE))).toBe(false);
  });

  it('makes a second process fail to open a directory this process holds, until it is closed', async () => {
    const dataDir = await freshDir();
    const db = await createPgliteDatabase({ dataDir });
    const refused = startHolder(dataDir);
    expect(await refused.outcome).toBe(`error: data directory ${dataDir} is in use by process ${process.pid}`);
    await db.close();

    const holder = startHolder(dataDir);
    expect(await holder.outcome).toBe('ready');
    await holder.kill();
  });

  it('lets exactly one of two processes racing for a stale lock open the directory', async () => {
    const dataDir = await freshDir();
    const stale = await deadPid();
    await writeFile(join(dataDir, LOCK_FILE), String(stale));
    const racers = [startHolder(dataDir), startHolder(dataDir)];
    const outcomes = await Promise.all(racers.map((racer) => racer.outcome));
    expect(outcomes.filter((outcome) => outcome === 'ready')).toHaveLength(1);
    const winner = racers[outcomes.indexOf('ready')];
    expect(outcomes.filter((outcome) => outcome !== 'ready')).toEqual([
      `error: data directory ${dataDir} is in use by process ${winner?.pid}`,
    ]);
    expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(winner?.pid));
    await Promise.all(racers.map((racer) => racer.kill()));
  });

  it('takes over a lock holding its own pid (a restarted container reuses pids) or no pid at all', async () => {
    for (const content of [String(process.pid), '']) {
      const dataDir = await freshDir();
      await writeFile(join(dataDir, LOCK_FILE), content);
      const db = await createPgliteDatabase({ dataDir });
      expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(process.pid));
      await db.close();
      expect(await exists(join(dataDir, LOCK_FILE))).toBe(false);
    }
  });

  it('leaves a lock another process took over in place when it closes', async () => {
    const dataDir = await freshDir();
    const db = await createPgliteDatabase({ dataDir });
    const other = await deadPid();
    // As if an operator had removed our lock and another process had taken the directory.
    await writeFile(join(dataDir, LOCK_FILE), String(other));
    await db.close();
    expect(await readFile(join(dataDir, LOCK_FILE), 'utf8')).toBe(String(other));
  });
});
