import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/platform/db/port.ts';
import { DatabaseError, SQLSTATE } from '../../../src/platform/db/errors.ts';
import { createPgliteDatabase, type PgliteDatabaseOptions } from '../../../src/platform/db/pglite.ts';
import type { Request, Response } from '../../../src/platform/db/pglite-worker-protocol.ts';
import { createPgliteDirs, type PgliteDirs } from '../../support/pglite-dirs.ts';

const PGLITE = join(import.meta.dirname, '../../../src/platform/db/pglite.ts');

/** Opens a database and hands back the worker thread it started (Node announces every new thread). */
async function openWithWorker(options: PgliteDatabaseOptions = {}): Promise<{ db: Database; worker: Worker; exited: Promise<number> }> {
  const created: Worker[] = [];
  const onWorker = (message: unknown): void => {
    created.push((message as { worker: Worker }).worker);
  };
  subscribe('worker_threads', onWorker);
  let db: Database;
  try {
    db = await createPgliteDatabase(options);
  } finally {
    unsubscribe('worker_threads', onWorker);
  }
  const worker = created.at(-1);
  if (worker === undefined) throw new Error('createPgliteDatabase started no worker thread');
  return { db, worker, exited: new Promise((resolve) => worker.once('exit', resolve)) };
}

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

describe('PGlite on a worker thread', () => {
  let dirs: PgliteDirs;
  const freshDir = (): Promise<string> => dirs.fresh();
  let db: Database;

  beforeAll(async () => {
    dirs = await createPgliteDirs('blocks-pglite-worker');
    db = await createPgliteDatabase({ dataDir: await freshDir() });
  });
  afterAll(async () => {
    await db.close();
    await dirs.remove();
  });

  it('keeps the event loop free while a statement runs', async () => {
    let ticked = false;
    const timer = setTimeout(() => (ticked = true), 20);
    // On the main thread this statement would hold the loop for its whole 300 ms, and its promise
    // would settle before the timer could fire.
    await db.query('SELECT pg_sleep(0.3)');
    clearTimeout(timer);
    expect(ticked).toBe(true);
  });

  it('keeps 32 MB of shared buffers, not 128, so its WASM memory stays small', async () => {
    const { rows } = await db.query<{ shared_buffers: string }>('SHOW shared_buffers');
    expect(rows).toEqual([{ shared_buffers: '32MB' }]);
  });

  it('runs operations in call order; those called during a transaction run right after it', async () => {
    await db.query('CREATE TABLE calls (seq serial, who text)');
    const insert = (who: string) => db.query('INSERT INTO calls (who) VALUES ($1)', [who]);
    const inside = deferred();
    const first = insert('before');
    const tx = db.transaction(async (t) => {
      await t.query(`INSERT INTO calls (who) VALUES ('tx-1')`);
      await inside.promise;
      await t.query(`INSERT INTO calls (who) VALUES ('tx-2')`);
    });
    const during = [insert('during-1'), db.exec(`INSERT INTO calls (who) VALUES ('during-2')`), insert('during-3')];
    await new Promise((resolve) => setTimeout(resolve, 20));
    inside.resolve();
    await Promise.all([first, tx, ...during]);
    const { rows } = await db.query<{ who: string }>('SELECT who FROM calls ORDER BY seq');
    expect(rows.map((r) => r.who)).toEqual(['before', 'tx-1', 'tx-2', 'during-1', 'during-2', 'during-3']);
  });

  it('keeps the fields of a database error from the worker: SQLSTATE, detail, and the driver’s own as the cause', async () => {
    await db.query('CREATE TABLE keyed (id integer PRIMARY KEY)');
    await db.query('INSERT INTO keyed VALUES (1)');
    const error = await db.query('INSERT INTO keyed VALUES (1)').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: SQLSTATE.uniqueViolation, constraint: 'keyed_pkey', detail: 'Key (id)=(1) already exists.' });
    expect((error as DatabaseError).cause).toMatchObject({ severity: 'ERROR', schema: 'public', routine: '_bt_check_unique' });
  });

  it('rejects a parameter that cannot cross to the worker, and the connection carries on', async () => {
    const error = await db.query('SELECT $1::text AS value', [() => 'not data']).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'DataCloneError' });
    const inTx = await db.transaction(async (tx) => {
      await tx.query('SELECT $1::text', [Symbol('nope')]).catch(() => 'refused before it reached the worker');
      return (await tx.query<{ one: number }>('SELECT 1 AS one')).rows;
    });
    expect(inTx).toEqual([{ one: 1 }]);
    expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
  });

  it('rejects every waiting call when the worker thread crashes, and every later one; close still frees the directory', async () => {
    const dataDir = await freshDir();
    const { db: own, worker, exited } = await openWithWorker({ dataDir });
    await own.query('CREATE TABLE kept (x integer)');
    await own.query('INSERT INTO kept VALUES (1)');

    const crash = deferred();
    const transaction = own
      .transaction(async (tx) => {
        await tx.query('INSERT INTO kept VALUES (2)');
        await crash.promise;
        await tx.query('INSERT INTO kept VALUES (3)'); // posted behind the message that kills the thread
      })
      .catch((e: unknown) => e);
    const queued = own.query('SELECT 1').catch((e: unknown) => e); // waits behind the open transaction
    await new Promise((resolve) => setTimeout(resolve, 20));
    // A message the worker cannot handle throws there, uncaught: the thread dies with calls waiting on it.
    worker.postMessage(null);
    crash.resolve();

    const failures = await Promise.all([transaction, queued]);
    for (const failure of failures) expect(failure).toMatchObject({ message: expect.stringMatching(/^PGlite worker thread died: /) });
    expect(await exited).not.toBe(0);
    await expect(own.query('SELECT 1')).rejects.toThrow(/^PGlite worker thread died: /);
    expect(own.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });

    await own.close();
    const reopened = await createPgliteDatabase({ dataDir });
    try {
      // Only what committed before the crash is there.
      expect((await reopened.query('SELECT x FROM kept ORDER BY x')).rows).toEqual([{ x: 1 }]);
    } finally {
      await reopened.close();
    }
  });

  it('rejects the call in flight when the worker thread is terminated from outside', async () => {
    const { db: own, worker } = await openWithWorker({ dataDir: await freshDir() });
    const inFlight = own.query('SELECT pg_sleep(1)');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await worker.terminate();
    await expect(inFlight).rejects.toThrow('PGlite worker thread died: exit code 1');
    await own.close();
  });

  it('never runs the statements of a transaction whose BEGIN failed on their own', async () => {
    const { db: own, worker } = await openWithWorker({ dataDir: await freshDir() });
    try {
      await own.query('CREATE TABLE guarded (x integer)');
      // BEGIN fails inside an aborted transaction block; the ROLLBACK then leaves the connection clean,
      // so a statement sent for that transaction would succeed, committing by itself, if it ran.
      await own.exec('BEGIN');
      await own.query('SELECT 1 / 0').catch(() => 'aborts the block on purpose');
      const answers = new Map<number, Response>();
      const listener = (response: Response): void => {
        if (response.id >= 1_000_000) answers.set(response.id, response);
      };
      worker.on('message', listener);
      const raw = (request: Request): void => worker.postMessage(request);
      raw({ id: 1_000_000, op: 'begin', tx: 999 });
      raw({ id: 1_000_001, op: 'rollback', tx: 1 }); // an earlier transaction's: it clears the block
      raw({ id: 1_000_002, op: 'query', sql: 'INSERT INTO guarded VALUES (1)', params: [], tx: 999 });
      raw({ id: 1_000_003, op: 'commit', tx: 999 });
      raw({ id: 1_000_004, op: 'query', sql: 'INSERT INTO guarded VALUES (2)', params: [], tx: 998 });
      await expect.poll(() => answers.size).toBe(4);
      worker.off('message', listener);

      expect(answers.has(1_000_000)).toBe(false); // BEGIN is never answered
      expect(answers.get(1_000_001)).toMatchObject({ ok: true });
      for (const id of [1_000_002, 1_000_003]) {
        expect(answers.get(id)).toMatchObject({ ok: false, error: { fields: { code: SQLSTATE.inFailedTransaction } } });
      }
      expect(answers.get(1_000_004)).toMatchObject({ ok: true }); // only that transaction's statements are refused
      expect((await own.query('SELECT x FROM guarded')).rows).toEqual([{ x: 2 }]);
    } finally {
      await own.close();
    }
  });

  it('ends the worker thread when closed, after everything called before close', async () => {
    const { db: own, exited } = await openWithWorker({ dataDir: await freshDir() });
    let exitedEarly = false;
    void exited.then(() => (exitedEarly = true));
    const before = own.query<{ one: number }>('SELECT 1 AS one');
    const closing = own.close();
    await expect(own.query('SELECT 2')).rejects.toThrow('the PGlite database is closed');
    expect((await before).rows).toEqual([{ one: 1 }]);
    expect(exitedEarly).toBe(false);
    await closing;
    await exited;
  });

  it('keeps a process alive while a call waits on the worker, but not once it is idle (plain Node, no vitest)', async () => {
    const script = `
      import { createPgliteDatabase } from ${JSON.stringify(PGLITE)};
      const db = await createPgliteDatabase({ dataDir: process.argv[1] });
      const { rows } = await db.query('SELECT pg_sleep(0.2), 42 AS answer');
      process.stdout.write(JSON.stringify(rows[0].answer));
      // Left open on purpose: an idle database must not keep the process running.
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, await freshDir()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(killer);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: '42', stderr: '' });
  });
});
