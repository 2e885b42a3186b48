import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, type Database } from '../../../../src/platform/db/index.ts';
import { isBlocksError } from '../../../../src/platform/errors.ts';
import { createRecordGate } from '../../../../src/autonomous/ai-router/proxy/record-gate.ts';
import { createTestDatabase, type TestDatabase } from '../../../support/postgres.ts';
import { probeService } from '../../../support/services.ts';
import { startTcpProxy, targetOf, type TcpProxy } from '../../../support/tcp-proxy.ts';

/** The check before each provider call, against a real PostgreSQL behind a proxy the test cuts. */
const postgres = await probeService('postgres');

const refusal = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => expect.unreachable('the gate let the call through'),
    (error: unknown) => error,
  );

describe.skipIf(!postgres.ok)('record gate', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let pings = 0;
  let now = 1_000_000;
  const clock = { now: () => now };
  const counted = { ping: () => ((pings += 1), db.ping()) };

  beforeAll(async () => {
    database = await createTestDatabase();
    proxy = await startTcpProxy(targetOf(database.url));
    db = await createPostgresDatabase({ url: proxy.urlFor(database.url), connectionTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await db?.close();
    await proxy?.close();
    await database?.drop();
  });

  it('costs nothing while the proxy keeps writing, and pings once when it has not written for a while', async () => {
    const gate = createRecordGate({ db: counted, clock, freshMs: 1_000 });
    pings = 0;
    gate.succeeded();
    for (let i = 0; i < 100; i++) await gate.check();
    expect(pings).toBe(0);
    now += 1_500;
    await Promise.all([gate.check(), gate.check(), gate.check()]);
    expect(pings).toBe(1);
  });

  it('refuses with 503 DATABASE_UNAVAILABLE while the database is cut, pinging once per retry interval, and opens again once it answers', async () => {
    const gate = createRecordGate({ db: counted, clock, freshMs: 1_000, retryAfterMs: 2_000 });
    pings = 0;
    await proxy.cut();
    try {
      const error = await refusal(gate.check());
      expect(isBlocksError(error) && [error.status, error.code, error.extensions['retry_after']]).toEqual([503, 'DATABASE_UNAVAILABLE', 2]);
      for (let i = 0; i < 10; i++) await refusal(gate.check());
      expect(pings).toBe(1);
    } finally {
      await proxy.restore();
    }
    await refusal(gate.check());
    now += 2_001;
    await gate.check();
    expect(pings).toBe(2);
  });

  it('closes when a write of the proxy fails because the database is away, not when the write itself was wrong', async () => {
    const gate = createRecordGate({ db: counted, clock, freshMs: 1_000, retryAfterMs: 2_000 });
    gate.succeeded();
    gate.failed(new Error('event e1 has no tenant'));
    await gate.check();
    await proxy.cut();
    const lost = await db.query('SELECT 1').then(
      () => expect.unreachable('the query went through a cut proxy'),
      (error: unknown) => error,
    );
    await proxy.restore();
    gate.failed(lost);
    await refusal(gate.check());
  });
});
