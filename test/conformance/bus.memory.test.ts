import { afterAll } from 'vitest';
import { createMemoryBus } from '../../src/platform/bus/memory.ts';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { runMigrations } from '../../src/platform/db/migrate.ts';
import { MIGRATIONS } from '../support/databases.ts';
import { createPgliteDirs } from '../support/pglite-dirs.ts';
import { busSuite } from './bus.suite.ts';

const dirs = await createPgliteDirs('bus-memory', async (db) => {
  await runMigrations(db, MIGRATIONS);
});
// One database for the cases (opening PGlite takes seconds), emptied before each.
const db = await createPgliteDatabase({ dataDir: await dirs.fresh() });
afterAll(async () => {
  await db.close();
  await dirs.remove();
});

const onePeer =
  'the in-process bus keeps its messages in its own process, so there is no peer process to hand them to. ' +
  'Redelivery between subscribers of one process is covered by the stop case, a process that dies by the kill case.';

// Without a database, as unit tests and tools use it: messages live as long as the process.
busSuite(
  'memory',
  async () => {
    const bus = createMemoryBus();
    return { bus, cleanup: () => bus.close() };
  },
  {
    notApplicable: {
      closeMidHandler: onePeer,
      killed: 'without a database the in-process bus keeps messages in memory only; the database-backed run below covers the case.',
    },
  },
);

// The embedded default: durable consumers' messages kept in PGlite.
busSuite(
  'memory on PGlite',
  async () => {
    await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
    const bus = createMemoryBus({ db });
    return { bus, cleanup: () => bus.close() };
  },
  {
    notApplicable: { closeMidHandler: onePeer },
    processTarget: async () => ({ target: { kind: 'memory', dataDir: await dirs.fresh() }, cleanup: async () => undefined }),
  },
);
