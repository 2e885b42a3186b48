import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { createPostgresDatabase } from '../../src/platform/db/postgres.ts';
import { LISTENER_APPLICATION_NAME } from '../../src/platform/db/postgres-listener.ts';
import { openDatabase } from '../../src/platform/db/open.ts';
import { probeService } from '../support/services.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { dbSuite } from './db.suite.ts';

const svc = await probeService('postgres');

describe.skipIf(!svc.ok)('PostgreSQL', () => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase();
  });
  afterAll(async () => {
    await testDb?.drop();
  });

  const open = () => createPostgresDatabase({ url: testDb.url, poolMax: 4, listenReconnectMs: { min: 50, max: 500 } });
  dbSuite('postgres', open, {
    anotherHandle: open,
    killListeners: async () => {
      // As an administrator (or a server restart) would: from outside, on the server's side.
      const admin = new Client({ connectionString: testDb.url });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ killed: boolean }>(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = $1`,
          [LISTENER_APPLICATION_NAME],
        );
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.every((row) => row.killed)).toBe(true);
      } finally {
        await admin.end();
      }
    },
  });

  it('is what openDatabase picks when a URL is configured', async () => {
    const db = await openDatabase({ url: testDb.url, dataDir: 'ignored' });
    try {
      expect(db.kind).toBe('postgres');
      expect((await db.query<{ db: string }>('SELECT current_database() AS db')).rows).toEqual([{ db: testDb.name }]);
    } finally {
      await db.close();
    }
  });

  it('holds one pooled connection per transaction and queues callers beyond the pool', async () => {
    const db = await createPostgresDatabase({ url: testDb.url, poolMax: 2 });
    try {
      let release = (): void => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      const held = [db.transaction(() => gate), db.transaction(() => gate)];
      await new Promise((resolve) => setTimeout(resolve, 100));
      const queued = db.query('SELECT 1');
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(db.poolStats()).toMatchObject({ total: 2, idle: 0, waiting: 1 });
      release();
      await Promise.all([...held, queued]);
      expect(db.poolStats()).toMatchObject({ total: 2, idle: 2, waiting: 0 });
    } finally {
      await db.close();
    }
  });

  it('fails ping, queries and transactions when the server cannot be reached', async () => {
    const db = await createPostgresDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', connectionTimeoutMs: 1000 });
    try {
      await expect(db.ping()).rejects.toThrow();
      await expect(db.transaction(async () => 1)).rejects.toThrow();
      // Nothing stays registered for a listen that could not start: a later one tries again.
      await expect(db.listen('unreachable', () => undefined)).rejects.toThrow();
      await expect(db.listen('unreachable', () => undefined)).rejects.toThrow();
    } finally {
      await db.close();
    }
  });
});
