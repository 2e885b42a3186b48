import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { DEAD_LETTER_HEADERS, type Delivery } from '../../../src/platform/bus/port.ts';
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

  it('counts deliveries across restarts: a message whose handling never ends is dead-lettered after maxDeliver of them', async () => {
    await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
    const watch = async (bus: ReturnType<typeof createMemoryBus>, seen: Delivery[]) =>
      bus.subscribe({ consumer: 'dead-letters', subject: 'dlq.>' }, async (delivery) => void seen.push(delivery));
    const attempts: number[] = [];
    const deadLetters: Delivery[] = [];
    // Each bus hands the message to a handler that never returns, as a handler that kills its process does; then it is gone.
    for (let start = 1; start <= 4; start += 1) {
      const bus = createMemoryBus({ db });
      try {
        await watch(bus, deadLetters);
        await bus.subscribe({ consumer: 'fragile', subject: 'calls.*', maxDeliver: 3 }, (delivery) => {
          attempts.push(delivery.attempt);
          return new Promise<void>(() => undefined);
        });
        if (start === 1) await bus.publish({ subject: 'calls.done', id: 'poison', data: 'boom' });
        if (start <= 3) await vi.waitFor(() => expect(attempts).toHaveLength(start), { timeout: 5_000 });
        else await vi.waitFor(() => expect(deadLetters).toHaveLength(1), { timeout: 5_000 });
      } finally {
        await bus.close();
      }
    }
    expect(attempts).toEqual([1, 2, 3]);
    expect(deadLetters[0]?.subject).toBe('dlq.fragile.calls.done');
    expect(deadLetters[0]?.headers[DEAD_LETTER_HEADERS.attempts]).toBe('3');
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM bus_pending WHERE consumer = 'fragile'`);
    expect(rows).toEqual([{ n: 0 }]);
  }, 30_000);

  it('drops messages older than maxAgeMs, so a consumer that never comes back keeps nothing for ever', async () => {
    await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
    const first = createMemoryBus({ db });
    for (const consumer of ['gone', 'live']) await (await first.subscribe({ consumer, subject: 'calls.*' }, async () => undefined)).stop();
    for (let n = 0; n < 5; n += 1) await first.publish({ subject: 'calls.done', id: `old-${n}`, data: n });
    await first.close();
    // Two days pass for what is stored.
    await db.query(`UPDATE bus_messages SET created_at = created_at - interval '2 days'`);

    const second = createMemoryBus({ db, maxAgeMs: 24 * 3_600_000 });
    try {
      await second.publish({ subject: 'calls.done', id: 'new', data: 'new' });
      expect(await second.lag('gone')).toBe(1);
      const received: unknown[] = [];
      await second.subscribe({ consumer: 'live', subject: 'calls.*' }, async (delivery) => void received.push(delivery.data));
      await vi.waitFor(() => expect(received).toEqual(['new']), { timeout: 5_000 });
    } finally {
      await second.close();
    }
    const { rows } = await db.query<{ consumer: string; n: number }>(
      'SELECT consumer, count(*)::int AS n FROM bus_pending GROUP BY consumer ORDER BY consumer',
    );
    expect(rows).toEqual([{ consumer: 'gone', n: 1 }]);
    const messages = await db.query<{ message_id: string }>('SELECT message_id FROM bus_messages');
    expect(messages.rows).toEqual([{ message_id: 'new' }]);
  }, 30_000);
});
