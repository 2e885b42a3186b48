import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { openDatabase } from '../../src/platform/db/open.ts';
import { dbSuite } from './db.suite.ts';

describe('PGlite on disk', () => {
  let dataDir: string;
  let parent: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), 'blocks-pglite-'));
    dataDir = join(parent, 'nested', 'data');
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  // One data directory for the whole suite: makeDb is only ever called again after the first is closed.
  dbSuite('pglite (data directory)', () => createPgliteDatabase({ dataDir }), {
    notApplicable: {
      otherHandle: 'one process owns a PGlite data directory, so there is no second handle (or replica) to notify from',
      reconnect: 'PGlite listens on its own in-process connection, which no server can drop',
    },
  });

  it('keeps committed data across close and reopen, creating the directory when missing', async () => {
    const first = await openDatabase({ dataDir });
    expect(first.kind).toBe('pglite');
    await first.query('CREATE TABLE kept (x integer)');
    await first.transaction((tx) => tx.query('INSERT INTO kept VALUES (7)'));
    await first.close();
    const second = await createPgliteDatabase({ dataDir });
    try {
      expect((await second.query('SELECT x FROM kept')).rows).toEqual([{ x: 7 }]);
    } finally {
      await second.close();
    }
  });
});

describe('PGlite in memory', () => {
  it('keeps nothing between instances', async () => {
    const first = await createPgliteDatabase({ dataDir: 'memory://' });
    await first.query('CREATE TABLE gone (x integer)');
    await first.close();
    const second = await createPgliteDatabase();
    try {
      const { rows } = await second.query(`SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'gone'`);
      expect(rows).toEqual([{ n: 0 }]);
    } finally {
      await second.close();
    }
  });

  it('runs concurrent transactions one after the other, never interleaving their statements', async () => {
    const db = await createPgliteDatabase();
    try {
      await db.query('CREATE TABLE log (seq serial, who text)');
      const writer = (who: string) =>
        db.transaction(async (tx) => {
          for (let i = 0; i < 5; i += 1) {
            await tx.query('INSERT INTO log (who) VALUES ($1)', [who]);
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
        });
      const outsider = (async () => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        await db.query(`INSERT INTO log (who) VALUES ('outside')`);
      })();
      await Promise.all([writer('a'), writer('b'), writer('c'), outsider]);
      const { rows } = await db.query<{ who: string }>('SELECT who FROM log ORDER BY seq');
      const runs = rows.map((r) => r.who).filter((who, i, all) => i === 0 || all[i - 1] !== who);
      // Each transaction's five rows are contiguous: every writer appears as exactly one run.
      expect(runs.filter((who) => who !== 'outside').sort()).toEqual(['a', 'b', 'c']);
      expect(rows).toHaveLength(16);
      expect(db.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await db.close();
    }
  });

  it('reports callers queued behind a transaction as waiting', async () => {
    const db = await createPgliteDatabase();
    try {
      let release = (): void => {};
      const held = db.transaction(() => new Promise<void>((resolve) => (release = resolve)));
      await new Promise((resolve) => setTimeout(resolve, 10));
      const queued = [db.query('SELECT 1'), db.query('SELECT 2')];
      expect(db.poolStats()).toEqual({ total: 1, idle: 0, waiting: 2 });
      release();
      await Promise.all([held, ...queued]);
      expect(db.poolStats().idle).toBe(1);
    } finally {
      await db.close();
    }
  });
});
