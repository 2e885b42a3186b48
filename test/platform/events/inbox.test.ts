import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Database, Queryable } from '../../../src/platform/db/port.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { appendEvent } from '../../../src/platform/events/outbox.ts';
import { createOutboxRelay } from '../../../src/platform/events/relay.ts';
import { handleOnce, withInbox } from '../../../src/platform/events/inbox.ts';
import { isSystemEvent } from '../../../src/platform/events/types.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';

const postgres = await probeService('postgres');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The effect under test: one row per call, so a second effect is visible as a second row. */
const applyEffect = (tx: Queryable, eventId: string): Promise<unknown> =>
  tx.query('INSERT INTO inbox_effects (event_id) VALUES ($1)', [eventId]);

const effects = async (db: Database): Promise<string[]> =>
  (await db.query<{ event_id: string }>('SELECT event_id FROM inbox_effects ORDER BY id')).rows.map((row) => row.event_id);

const delivery = (id: string, attempt = 1): Delivery => ({
  subject: 'orders.placed',
  data: { id },
  id,
  key: undefined,
  headers: {},
  attempt,
});

describe('inbox', () => {
  const buses: EventBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
  });

  forEachDatabase(postgres, (fixture) => {
    beforeEach(async () => {
      await fixture.db().query('CREATE TABLE IF NOT EXISTS inbox_effects (id serial PRIMARY KEY, event_id text NOT NULL)');
      await fixture.db().query('TRUNCATE inbox_effects');
    });

    it('has one effect when the same event is handled twice', async () => {
      const db = fixture.db();
      expect(await handleOnce(db, 'orders-projector', 'event-1', (tx) => applyEffect(tx, 'event-1').then(() => undefined))).toBe(true);
      expect(await handleOnce(db, 'orders-projector', 'event-1', (tx) => applyEffect(tx, 'event-1').then(() => undefined))).toBe(false);
      expect(await effects(db)).toEqual(['event-1']);
      const { rows } = await db.query('SELECT consumer, event_id FROM inbox');
      expect(rows).toEqual([{ consumer: 'orders-projector', event_id: 'event-1' }]);
    });

    it('keeps each consumer’s inbox apart', async () => {
      const db = fixture.db();
      for (const consumer of ['projector-a', 'projector-b']) {
        expect(await handleOnce(db, consumer, 'event-1', async (tx) => void (await applyEffect(tx, consumer)))).toBe(true);
      }
      expect(await effects(db)).toEqual(['projector-a', 'projector-b']);
    });

    it('records nothing when the work fails, so the redelivery does the work', async () => {
      const db = fixture.db();
      const failed = handleOnce(db, 'orders-projector', 'event-1', async (tx) => {
        await applyEffect(tx, 'event-1');
        throw new Error('projector crashed');
      });
      await expect(failed).rejects.toThrow('projector crashed');
      expect(await effects(db)).toEqual([]);
      expect((await db.query('SELECT count(*) AS n FROM inbox')).rows).toEqual([{ n: 0 }]);
      expect(await handleOnce(db, 'orders-projector', 'event-1', async (tx) => void (await applyEffect(tx, 'event-1')))).toBe(true);
      expect(await effects(db)).toEqual(['event-1']);
    });

    it('has one effect when replicas handle the same event at the same time', async () => {
      const db = fixture.db();
      const other = await fixture.anotherHandle();
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          handleOnce(i % 2 === 0 ? db : other, 'orders-projector', 'event-1', async (tx) => {
            await applyEffect(tx, 'event-1');
            await sleep(30); // keep the first transaction open while the others arrive
          }),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await effects(db)).toEqual(['event-1']);
    });

    it('lets a waiting replica do the work when the one ahead of it fails', async () => {
      const db = fixture.db();
      const other = await fixture.anotherHandle();
      const first = handleOnce(db, 'orders-projector', 'event-1', async (tx) => {
        await applyEffect(tx, 'first');
        await sleep(50);
        throw new Error('first replica crashed');
      });
      await sleep(10);
      const second = handleOnce(other, 'orders-projector', 'event-1', async (tx) => void (await applyEffect(tx, 'second')));
      await expect(first).rejects.toThrow('first replica crashed');
      expect(await second).toBe(true);
      expect(await effects(db)).toEqual(['second']);
    });

    it('wraps a bus handler so a duplicate delivery is acked without a second effect', async () => {
      const db = fixture.db();
      const seen: number[] = [];
      const handler = withInbox({ db, consumer: 'orders-projector' }, async (d, tx) => {
        seen.push(d.attempt);
        await applyEffect(tx, d.id);
      });
      await handler(delivery('event-1'));
      await handler(delivery('event-1', 2));
      await handler(delivery('event-2'));
      expect(seen).toEqual([1, 1]);
      expect(await effects(db)).toEqual(['event-1', 'event-2']);
    });

    it('has one effect end to end when a consumer dies after its effect committed but before acking', async () => {
      const db = fixture.db();
      const bus = createMemoryBus();
      buses.push(bus);
      const attempts: number[] = [];
      const effect = withInbox({ db, consumer: 'orders-projector' }, async (d, tx) => {
        if (!isSystemEvent(d.data)) throw new Error('not a SystemEvent');
        await applyEffect(tx, d.data.event_id);
      });
      await bus.subscribe({ consumer: 'orders-projector', subject: 'orders.>', retryDelayMs: 10, ackWaitMs: 200 }, async (d) => {
        attempts.push(d.attempt);
        await effect(d);
        if (d.attempt === 1) throw new Error('consumer died before acking');
      });
      const event = await db.transaction((tx) =>
        appendEvent(tx, { event_type: 'orders.placed', source_service: 'test', payload: { order: 1 } }),
      );
      await createOutboxRelay({ db, bus }).flush();
      await vi.waitFor(() => expect(attempts).toEqual([1, 2]), { timeout: 5_000 });
      await vi.waitFor(async () => expect(await bus.lag('orders-projector')).toBe(0));
      expect(await effects(db)).toEqual([event.event_id]);
    });
  });
});
