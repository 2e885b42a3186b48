import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Database } from '../../../src/platform/db/port.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { appendEvent } from '../../../src/platform/events/outbox.ts';
import { createOutboxRelay, DEAD_LETTERED_EVENT, type OutboxRelay, type OutboxRelayOptions } from '../../../src/platform/events/relay.ts';
import type { SystemEvent } from '../../../src/platform/events/types.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';
import { createRecordingBus, type RecordingBus } from './recording-bus.ts';

const postgres = await probeService('postgres');

const append = (db: Database, n: number, key: (i: number) => string = () => 'k') =>
  (async () => {
    const events: SystemEvent[] = [];
    for (let i = 0; i < n; i += 1) {
      events.push(
        await appendEvent(db, {
          event_type: 'orders.placed',
          source_service: 'test.orders',
          payload: { i },
          correlation_id: `req-${i}`,
          key: key(i),
        }),
      );
    }
    return events;
  })();

const ids = (messages: readonly { id?: string | undefined }[]): (string | undefined)[] => messages.map((m) => m.id);

describe('outbox relay', () => {
  const relays: OutboxRelay[] = [];
  const buses: EventBus[] = [];
  const newBus = (): RecordingBus => {
    const bus = createRecordingBus(createMemoryBus());
    buses.push(bus);
    return bus;
  };
  const newRelay = (options: OutboxRelayOptions): OutboxRelay => {
    const relay = createOutboxRelay(options);
    relays.push(relay);
    return relay;
  };
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
  });

  forEachDatabase(postgres, (fixture) => {
    it('publishes pending events in commit order as complete messages, and marks them published', async () => {
      const db = fixture.db();
      const bus = newBus();
      const received: Delivery[] = [];
      await bus.subscribe({ consumer: 'relay-test', subject: 'orders.>' }, async (delivery) => {
        received.push(delivery);
      });
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const first = await appendEvent(db, {
        event_type: 'orders.placed',
        source_service: 'test.orders',
        payload: { n: 1 },
        correlation_id: 'req-1',
        traceparent,
      });
      const second = await appendEvent(db, {
        event_type: 'orders.shipped',
        source_service: 'test.orders',
        payload: { n: 2 },
        correlation_id: 'req-1',
        key: 'order-7',
      });
      const relay = newRelay({ db, bus });
      expect(await relay.backlog()).toBe(2);

      expect(await relay.flush()).toEqual({ published: 2, failed: 0 });
      expect(bus.published).toEqual([
        {
          subject: 'orders.placed',
          id: first.event_id,
          key: 'req-1',
          data: first,
          headers: { 'x-correlation-id': 'req-1', traceparent },
        },
        { subject: 'orders.shipped', id: second.event_id, key: 'order-7', data: second, headers: { 'x-correlation-id': 'req-1' } },
      ]);
      await vi.waitFor(() => expect(received).toHaveLength(2));
      expect(received.map((d) => d.data)).toEqual([first, second]);
      expect(received[0]?.headers).toMatchObject({ traceparent, 'x-correlation-id': 'req-1' });

      const { rows } = await db.query<{ published_at: Date | null; locked_by: string | null }>(
        'SELECT published_at, locked_by FROM events ORDER BY sequence',
      );
      expect(rows.every((row) => row.published_at instanceof Date && row.locked_by === null)).toBe(true);
      expect(await relay.backlog()).toBe(0);
      expect(await relay.flush()).toEqual({ published: 0, failed: 0 });
      expect(bus.attempts).toHaveLength(2);
    });

    it('works through a backlog larger than one batch, in order', async () => {
      const db = fixture.db();
      const bus = newBus();
      const events = await append(db, 25, (i) => `k${i % 3}`);
      const relay = newRelay({ db, bus, batchSize: 4 });
      expect(await relay.flush()).toEqual({ published: 25, failed: 0 });
      expect(ids(bus.published)).toEqual(events.map((e) => e.event_id));
    });

    it('uses subjectFor when given', async () => {
      const db = fixture.db();
      const bus = newBus();
      await append(db, 1);
      await newRelay({ db, bus, subjectFor: (event) => `tenant.acme.${event.event_type}` }).flush();
      expect(bus.published.map((m) => m.subject)).toEqual(['tenant.acme.orders.placed']);
    });

    it('leaves a row whose publish failed pending with the error, holds back its key, and sends it later', async () => {
      const db = fixture.db();
      const bus = newBus();
      // a1 a2 on key a, b1 on key b; a1's publish fails once.
      const [a1, a2, b1] = await append(db, 3, (i) => (i < 2 ? 'a' : 'b'));
      let failures = 1;
      bus.failing = (message) => message.id === a1?.event_id && failures-- > 0;
      const relay = newRelay({ db, bus });

      expect(await relay.flush()).toEqual({ published: 1, failed: 1 });
      expect(ids(bus.published)).toEqual([b1?.event_id]);
      const pending = await db.query<{ event_id: string; attempts: number; last_error: string | null; locked_by: string | null }>(
        'SELECT event_id, attempts, last_error, locked_by FROM events WHERE published_at IS NULL ORDER BY sequence',
      );
      expect(pending.rows).toEqual([
        { event_id: a1?.event_id, attempts: 1, last_error: expect.stringContaining('message refused'), locked_by: null },
        { event_id: a2?.event_id, attempts: 0, last_error: null, locked_by: null },
      ]);
      expect(await relay.backlog()).toBe(2);

      expect(await relay.flush()).toEqual({ published: 2, failed: 0 });
      expect(ids(bus.published)).toEqual([b1?.event_id, a1?.event_id, a2?.event_id]);
      expect(await relay.backlog()).toBe(0);
    });

    it('stops a pass after one round when the bus is down, and probes with one publish on the next pass', async () => {
      const db = fixture.db();
      const bus = newBus();
      await append(db, 10, (i) => `k${i}`);
      bus.down = true;
      const relay = newRelay({ db, bus, maxAttempts: 1 });
      expect(await relay.flush()).toEqual({ published: 0, failed: 10 });
      expect(bus.attempts).toHaveLength(10);
      expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
      expect(bus.attempts).toHaveLength(11);
      const { rows } = await db.query<{ leased: number; rejections: number; dead: number }>(
        `SELECT count(*) FILTER (WHERE locked_by IS NOT NULL)::int AS leased, coalesce(sum(rejections), 0)::int AS rejections,
                (SELECT count(*)::int FROM outbox_dead_letters) AS dead
         FROM events`,
      );
      // An outage is not the messages' fault: nothing counts towards dead-lettering, even at maxAttempts 1.
      expect(rows).toEqual([{ leased: 0, rejections: 0, dead: 0 }]);
      bus.down = false;
      expect(await relay.flush()).toEqual({ published: 10, failed: 0 });
    });

    it('keeps many publishes in flight, never two of one key, and each key in commit order', async () => {
      const db = fixture.db();
      const bus = newBus();
      bus.delayMs = 5;
      const events = await append(db, 60, (i) => `k${i % 12}`);
      const relay = newRelay({ db, bus, batchSize: 100 });
      expect(await relay.flush()).toEqual({ published: 60, failed: 0 });
      expect(bus.concurrency.max).toBe(12);
      expect(bus.concurrency.sameKeyOverlap).toBe(false);
      for (let k = 0; k < 12; k += 1) {
        expect(bus.published.filter((m) => m.key === `k${k}`).map((m) => m.id)).toEqual(
          events.filter((_, i) => i % 12 === k).map((e) => e.event_id),
        );
      }
    });

    it('caps publishes in flight at maxInFlight', async () => {
      const db = fixture.db();
      const bus = newBus();
      bus.delayMs = 2;
      await append(db, 40, (i) => `k${i}`);
      const relay = newRelay({ db, bus, maxInFlight: 7 });
      expect(await relay.flush()).toEqual({ published: 40, failed: 0 });
      expect(bus.concurrency.max).toBe(7);
    });

    it('moves an event the answering bus refuses maxAttempts times to outbox_dead_letters, says so, and lets its key go on', async () => {
      const db = fixture.db();
      const bus = newBus();
      const [a1, a2, b1] = await append(db, 3, (i) => (i < 2 ? 'a' : 'b'));
      bus.failing = (message) => message.id === a1?.event_id;
      const dead: string[] = [];
      const relay = newRelay({ db, bus, maxAttempts: 3, onDeadLetter: (event) => dead.push(event.event_id) });
      expect(await relay.flush()).toEqual({ published: 1, failed: 1 });
      expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
      expect(dead).toEqual([]);
      expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
      expect(dead).toEqual([a1?.event_id]);
      const moved = await db.query(
        'SELECT event_id, event_type, payload, ordering_key, attempts, rejections, last_error FROM outbox_dead_letters',
      );
      expect(moved.rows).toEqual([
        {
          event_id: a1?.event_id,
          event_type: 'orders.placed',
          payload: { i: 0 },
          ordering_key: 'a',
          attempts: 3,
          rejections: 3,
          last_error: expect.stringContaining('message refused'),
        },
      ]);
      // a2 follows once a1 is out of the way, and the dead letter is announced on the bus.
      expect(await relay.flush()).toEqual({ published: 2, failed: 0 });
      expect(ids(bus.published)[0]).toBe(b1?.event_id);
      expect(ids(bus.published)).toContain(a2?.event_id);
      const announced = bus.published.find((m) => m.subject === DEAD_LETTERED_EVENT);
      expect((announced?.data as SystemEvent | undefined)?.payload).toEqual({
        event_id: a1?.event_id,
        event_type: 'orders.placed',
        ordering_key: 'a',
        attempts: 3,
        rejections: 3,
        last_error: expect.stringContaining('message refused'),
      });
      expect(ids(bus.published)).not.toContain(a1?.event_id);
      expect(await relay.backlog()).toBe(0);
    });

    it('never counts a publish that timed out towards dead-lettering, though the bus answers pings', async () => {
      const db = fixture.db();
      const bus = newBus();
      const [slow] = await append(db, 1);
      // As JetStream answers a publish it was too busy to acknowledge in time.
      const inner = bus.publish.bind(bus);
      bus.publish = async (message) => {
        if (message.id === slow?.event_id && !bus.down) throw Object.assign(new Error('TIMEOUT'), { name: 'TimeoutError' });
        return inner(message);
      };
      const relay = newRelay({ db, bus, maxAttempts: 1 });
      for (let i = 0; i < 3; i += 1) expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
      const { rows } = await db.query<{ attempts: number; rejections: number }>('SELECT attempts, rejections FROM events');
      expect(rows).toEqual([{ attempts: 3, rejections: 0 }]);
      expect((await db.query('SELECT 1 FROM outbox_dead_letters')).rows).toEqual([]);
    });

    it('retries a refused batch row by row, so one bad message does not hold back the others', async () => {
      const db = fixture.db();
      await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
      const inner = createMemoryBus({ db });
      buses.push(inner);
      const events = await append(db, 5, (i) => `k${i}`);
      // The in-process bus refuses a batch holding a message it cannot take: here, an invalid subject.
      const relay = newRelay({
        db,
        bus: inner,
        maxAttempts: 2,
        subjectFor: (event) => ((event.payload as { i: number }).i === 2 ? 'orders..broken' : event.event_type),
      });
      const received: string[] = [];
      await inner.subscribe({ consumer: 'refused-batch', subject: 'orders.>' }, async (delivery) => void received.push(delivery.id));
      expect(await relay.flush()).toEqual({ published: 4, failed: 1 });
      expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
      const moved = await db.query<{ event_id: string }>('SELECT event_id FROM outbox_dead_letters');
      expect(moved.rows).toEqual([{ event_id: events[2]?.event_id }]);
      await vi.waitFor(() =>
        expect(received.sort()).toEqual(
          events
            .filter((_, i) => i !== 2)
            .map((e) => e.event_id)
            .sort(),
        ),
      );
    });

    it('relays in the background when notified, without waiting for the poll', async () => {
      const db = fixture.db();
      const bus = newBus();
      const relay = newRelay({ db, bus, pollIntervalMs: 60_000 });
      relay.start();
      relay.start(); // a second start is harmless
      await vi.waitFor(() => expect(bus.attempts.length).toBe(0));
      const [event] = await append(db, 1);
      relay.notify();
      await vi.waitFor(() => expect(ids(bus.published)).toEqual([event?.event_id]), { timeout: 5_000 });
    });

    it('finds committed events by polling when nobody notifies', async () => {
      const db = fixture.db();
      const bus = newBus();
      const relay = newRelay({ db, bus, pollIntervalMs: 50 });
      relay.start();
      const events = await append(db, 3);
      await vi.waitFor(() => expect(ids(bus.published)).toEqual(events.map((e) => e.event_id)), { timeout: 5_000 });
    });

    it('keeps retrying in the background while the bus is down and delivers everything once, in order, when it returns', async () => {
      const db = fixture.db();
      const bus = newBus();
      bus.down = true;
      const relay = newRelay({ db, bus, pollIntervalMs: 20, maxBackoffMs: 80 });
      relay.start();
      const events = await append(db, 6, (i) => `k${i % 2}`);
      relay.notify();
      await vi.waitFor(() => expect(bus.attempts.length).toBeGreaterThanOrEqual(6), { timeout: 5_000 });
      expect(bus.published).toEqual([]);
      bus.down = false;
      await vi.waitFor(() => expect(bus.published).toHaveLength(6), { timeout: 5_000 });
      // The relay promises order within a key; the bus may come back in the middle of a pass, so
      // one key's events can go out before an earlier event of the other key.
      for (const key of ['k0', 'k1']) {
        expect(bus.published.filter((m) => m.key === key).map((m) => m.id)).toEqual(
          events.filter((_, i) => `k${i % 2}` === key).map((e) => e.event_id),
        );
      }
      expect(new Set(ids(bus.published)).size).toBe(6);
      // The pass marks its rows once its last round is back, a moment after the bus has them.
      await vi.waitFor(async () => expect(await relay.backlog()).toBe(0), { timeout: 5_000 });
    });

    it('stops its loop and leaves new events pending', async () => {
      const db = fixture.db();
      const bus = newBus();
      const relay = newRelay({ db, bus, pollIntervalMs: 10 });
      relay.start();
      await relay.stop();
      await relay.stop();
      await append(db, 2);
      relay.notify();
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(bus.attempts).toEqual([]);
      expect(await relay.backlog()).toBe(2);
    });

    it('stops within one publish while a large backlog drains, leaving the rest pending and unleased', async () => {
      const db = fixture.db();
      const bus = newBus();
      bus.delayMs = 5;
      await append(db, 400, (i) => `k-${i % 10}`);
      const relay = newRelay({ db, bus, batchSize: 50, exclusive: false });
      relay.start();
      await vi.waitFor(() => expect(bus.published.length).toBeGreaterThan(10), { timeout: 5_000, interval: 5 });
      const started = Date.now();
      await relay.stop();
      // Draining all 400 at 5 ms each would take 2 s; a stopping relay finishes the publish it is in.
      expect(Date.now() - started).toBeLessThan(500);
      const published = bus.published.length;
      expect(published).toBeLessThan(400);
      expect(await relay.backlog()).toBe(400 - published);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE locked_by IS NOT NULL');
      expect(rows).toEqual([{ n: 0 }]);
    });

    it('flush within a time bound publishes what fits and leaves the rest pending for another relay', async () => {
      const db = fixture.db();
      const bus = newBus();
      bus.delayMs = 5;
      await append(db, 400, (i) => `k-${i % 10}`);
      const relay = newRelay({ db, bus, batchSize: 50, exclusive: false });
      const started = Date.now();
      const result = await relay.flush({ withinMs: 200 });
      expect(Date.now() - started).toBeLessThan(700);
      expect(result.published).toBeGreaterThan(0);
      expect(result.published).toBeLessThan(400);
      expect(await relay.backlog()).toBe(400 - result.published);
      // Another relay takes the rest at once: nothing stays leased to the one that gave up.
      const other = newRelay({ db, bus, batchSize: 100, exclusive: false });
      bus.delayMs = 0;
      expect(await other.flush()).toEqual({ published: 400 - result.published, failed: 0 });
    });

    it('hands a pass to a bus that takes batches in one call, in commit order, and leaves it pending while the bus is down', async () => {
      const db = fixture.db();
      await db.query('TRUNCATE bus_consumers, bus_messages, bus_pending RESTART IDENTITY');
      const inner = createMemoryBus({ db });
      buses.push(inner);
      const received: string[] = [];
      await inner.subscribe({ consumer: 'batch-test', subject: 'orders.>' }, async (delivery) => void received.push(delivery.id));
      let down = true;
      const batches: number[] = [];
      let single = 0;
      const unreachable = (): Promise<never> => Promise.reject(new Error('bus unreachable (test)'));
      const bus: EventBus = {
        ...inner,
        publish: async (message) => {
          single += 1;
          if (down) return unreachable();
          await inner.publish(message);
        },
        publishBatch: async (messages) => {
          batches.push(messages.length);
          if (down) return unreachable();
          await inner.publishBatch?.(messages);
        },
        ping: () => (down ? unreachable() : inner.ping()),
      };
      const events = await append(db, 25, (i) => `k-${i % 3}`);
      const relay = newRelay({ db, bus, batchSize: 10, exclusive: true });
      // The batch fails, then one round (one row per key) finds the bus down.
      expect(await relay.flush()).toEqual({ published: 0, failed: 3 });
      expect(await relay.backlog()).toBe(25);
      down = false;
      single = 0;
      // The pass after an outage probes with one publish and goes on one by one; later passes batch again.
      expect(await relay.flush()).toEqual({ published: 25, failed: 0 });
      expect(single).toBe(10);
      expect(batches).toEqual([10, 10, 5]);
      await vi.waitFor(() => expect(received).toEqual(events.map((e) => e.event_id)), { timeout: 5_000 });
    });

    it('publishes pending rows without leasing them when it is alone on the database', async () => {
      const db = fixture.db();
      const bus = newBus();
      const events = await append(db, 3);
      const relay = newRelay({ db, bus, exclusive: true });
      expect(await relay.flush()).toEqual({ published: 3, failed: 0 });
      expect(ids(bus.published)).toEqual(events.map((e) => e.event_id));
      const { rows } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM events WHERE locked_by IS NOT NULL OR published_at IS NULL',
      );
      expect(rows).toEqual([{ n: 0 }]);
    });

    it('does not publish rows another relay holds until its lease runs out', async () => {
      const db = fixture.db();
      const bus = newBus();
      const events = await append(db, 2);
      // Another relay's claim, as a relay that died mid-pass leaves it.
      await db.query(`UPDATE events SET locked_by = 'dead-relay:1', locked_until = now() + interval '400 milliseconds'`);
      // Leases are what this test is about; on PGlite a relay skips them unless told it is not alone.
      const relay = newRelay({ db, bus, exclusive: false });
      expect(await relay.flush()).toEqual({ published: 0, failed: 0 });
      await new Promise((resolve) => setTimeout(resolve, 450));
      expect(await relay.flush()).toEqual({ published: 2, failed: 0 });
      expect(ids(bus.published)).toEqual(events.map((e) => e.event_id));
    });

    it('lets two relays share the outbox: every row published exactly once, each key in order', async () => {
      const db = fixture.db();
      const other = await fixture.anotherHandle();
      const bus = newBus();
      bus.delayMs = 1;
      const keys = 5;
      // Keys in runs of ten: a batch of another key's rows can go out while the first relay holds a run.
      const keyOf = (i: number): string => `k${Math.floor(i / 10) % keys}`;
      const events = await append(db, 120, keyOf);
      const first = newRelay({ db, bus, batchSize: 7, exclusive: false });
      const second = newRelay({ db: other, bus, batchSize: 7, exclusive: false });
      const byRelay = [0, 0];
      for (let round = 0; round < 50 && (await first.backlog()) > 0; round += 1) {
        const results = await Promise.all([first.flush(), second.flush()]);
        results.forEach((result, i) => (byRelay[i] = (byRelay[i] ?? 0) + result.published));
      }
      expect(await first.backlog()).toBe(0);
      // Both took part: the test would prove nothing if one relay had done all the work.
      expect(byRelay.every((n) => n > 0)).toBe(true);
      const published = ids(bus.attempts);
      expect(new Set(published).size).toBe(published.length);
      expect([...published].sort()).toEqual(events.map((e) => e.event_id).sort());
      for (let k = 0; k < keys; k += 1) {
        const ofKey = bus.published.filter((m) => m.key === `k${k}`).map((m) => m.id);
        expect(ofKey).toEqual(events.filter((_, i) => keyOf(i) === `k${k}`).map((e) => e.event_id));
      }
    });

    it('lets two background relays drain concurrent producers exactly once', async () => {
      const db = fixture.db();
      const other = await fixture.anotherHandle();
      const bus = newBus();
      const relays2 = [
        newRelay({ db, bus, batchSize: 5, pollIntervalMs: 20, exclusive: false }),
        newRelay({ db: other, bus, batchSize: 5, pollIntervalMs: 20, exclusive: false }),
      ];
      for (const relay of relays2) relay.start();
      const perProducer = await Promise.all(
        [db, other].map(async (handle, producer) => {
          const made: SystemEvent[] = [];
          for (let i = 0; i < 30; i += 1) {
            made.push(...(await append(handle, 1, () => `producer-${producer}`)));
            for (const relay of relays2) relay.notify();
          }
          return made;
        }),
      );
      await vi.waitFor(() => expect(bus.published).toHaveLength(60), { timeout: 10_000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(bus.attempts).toHaveLength(60);
      for (const [producer, made] of perProducer.entries()) {
        const ofKey = bus.published.filter((m) => m.key === `producer-${producer}`).map((m) => m.id);
        expect(ofKey).toEqual(made.map((e) => e.event_id));
      }
    });
  });
});
