import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, isTransientDatabaseError, type Database } from '../../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { probeService } from '../../support/services.ts';
import { startTcpProxy, targetOf } from '../../support/tcp-proxy.ts';

/** Which failures of a real PostgreSQL are worth trying again (an outage) and which are not (the work itself). */
const postgres = await probeService('postgres');

const failureOf = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => expect.unreachable('the work succeeded'),
    (error: unknown) => error,
  );

describe.skipIf(!postgres.ok)('isTransientDatabaseError', () => {
  let database: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await createPostgresDatabase({ url: database.url, poolMax: 2 });
    await db.exec('CREATE TABLE things (id int PRIMARY KEY)');
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('is false for what the statement itself did wrong: a constraint, bad SQL, a handler-made error', async () => {
    await db.query('INSERT INTO things VALUES (1)');
    expect(isTransientDatabaseError(await failureOf(db.query('INSERT INTO things VALUES (1)')))).toBe(false);
    expect(isTransientDatabaseError(await failureOf(db.query('SELECT nope FROM things')))).toBe(false);
    expect(isTransientDatabaseError(new Error('event e1 has no tenant'))).toBe(false);
  });

  it('is true for a refused connection, a connection cut mid-transaction and a backend the operator terminated, also as a cause', async () => {
    const refused = await createPostgresDatabase({ url: 'postgres://blocks@127.0.0.1:1/none' });
    const refusal = await failureOf(refused.query('SELECT 1'));
    await refused.close();
    expect(isTransientDatabaseError(refusal)).toBe(true);
    expect(isTransientDatabaseError(new Error('counting failed', { cause: refusal }))).toBe(true);

    const proxy = await startTcpProxy(targetOf(database.url));
    const proxied = await createPostgresDatabase({ url: proxy.urlFor(database.url) });
    const cut = await failureOf(
      proxied.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await proxy.cut();
        await tx.query('SELECT 1');
      }),
    );
    await proxied.close();
    await proxy.close();
    expect(isTransientDatabaseError(cut)).toBe(true);

    const terminated = await failureOf(
      db.transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await tx.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
      }),
    );
    expect(isTransientDatabaseError(terminated)).toBe(true);
  });
});
