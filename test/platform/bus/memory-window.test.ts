import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { createPgliteDatabase } from '../../../src/platform/db/pglite.ts';
import { runMigrations } from '../../../src/platform/db/migrate.ts';
import { MIGRATIONS } from '../../support/databases.ts';
import { createPgliteDirs } from '../../support/pglite-dirs.ts';

/**
 * The in-process bus on a database holds a window of each durable consumer's messages in memory
 * and reads the rest from its table as the window empties: a backlog larger than the window is
 * delivered whole, once, in publish order, and a bus opened again on the database delivers what
 * the last one left unacked.
 */
const dirs = await createPgliteDirs('bus-window', async (db) => {
  await runMigrations(db, MIGRATIONS);
});
const db = await createPgliteDatabase({ dataDir: await dirs.fresh() });
afterAll(async () => {
  await db.close();
  await dirs.remove();
});

describe('in-process bus on a database', () => {
  it('delivers a backlog many windows long once each, in publish order, through a window of 10', async () => {
    await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
    const bus = createMemoryBus({ db, windowSize: 10 });
    try {
      const created = await bus.subscribe({ consumer: 'slow', subject: 'calls.*' }, async () => undefined);
      await created.stop();
      for (let n = 0; n < 120; n += 1) await bus.publish({ subject: 'calls.done', id: `c-${n}`, data: n });
      await bus.publishBatch?.(Array.from({ length: 80 }, (_, i) => ({ subject: 'calls.done', id: `c-${120 + i}`, data: 120 + i })));
      expect(await bus.lag('slow')).toBe(200);
      const received: number[] = [];
      await bus.subscribe({ consumer: 'slow', subject: 'calls.*', concurrency: 1 }, async (delivery) => {
        received.push(delivery.data as number);
        // Publishing while the consumer is behind: these wait in the table too.
        if (received.length === 50) await bus.publish({ subject: 'calls.done', id: 'c-200', data: 200 });
      });
      await vi.waitFor(() => expect(received).toHaveLength(201), { timeout: 20_000, interval: 20 });
      expect(received).toEqual(Array.from({ length: 201 }, (_, n) => n));
      await vi.waitFor(async () => expect(await bus.lag('slow')).toBe(0), { timeout: 5_000 });
    } finally {
      await bus.close();
    }
    // Every ack reached the table by close.
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM bus_pending');
    expect(rows).toEqual([{ n: 0 }]);
  }, 30_000);

  it('delivers on the next bus what the closed one left unacked, to consumers known only from the table', async () => {
    await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
    const first = createMemoryBus({ db, windowSize: 10 });
    const created = await first.subscribe({ consumer: 'usage', subject: 'calls.*' }, async () => undefined);
    await created.stop();
    for (let n = 0; n < 30; n += 1) await first.publish({ subject: 'calls.done', id: `c-${n}`, data: n });
    await first.close();

    const second = createMemoryBus({ db, windowSize: 10 });
    try {
      // Published before the consumer subscribes again in this bus: kept for it all the same.
      await second.publish({ subject: 'calls.done', id: 'c-30', data: 30 });
      expect(await second.lag('usage')).toBe(31);
      const received: number[] = [];
      await second.subscribe({ consumer: 'usage', subject: 'calls.*', concurrency: 1 }, async (delivery) => {
        received.push(delivery.data as number);
      });
      await vi.waitFor(() => expect(received).toEqual(Array.from({ length: 31 }, (_, n) => n)), { timeout: 10_000, interval: 20 });
    } finally {
      await second.close();
    }
  }, 30_000);
});
