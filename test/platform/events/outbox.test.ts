import { describe, expect, it } from 'vitest';
import { appendEvent, InvalidEventError } from '../../../src/platform/events/outbox.ts';
import { newEventId } from '../../../src/platform/events/event-id.ts';
import { isSystemEvent } from '../../../src/platform/events/types.ts';
import { isUniqueViolation } from '../../../src/platform/db/errors.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';

const postgres = await probeService('postgres');
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newEventId', () => {
  it('makes RFC 9562 version 7 UUIDs that sort by creation time', () => {
    const earlier = newEventId(Date.UTC(2024, 0, 1));
    const later = newEventId(Date.UTC(2024, 0, 1) + 1);
    expect(earlier).toMatch(UUID_V7);
    expect(earlier < later).toBe(true);
    expect(earlier.slice(0, 13)).toBe('018cc251-f400');
    expect(new Set(Array.from({ length: 1000 }, () => newEventId(0))).size).toBe(1000);
  });
});

describe('appendEvent', () => {
  forEachDatabase(postgres, (fixture) => {
    it('fills the defaults and stores every SystemEvent field', async () => {
      const db = fixture.db();
      const before = Date.now();
      const event = await appendEvent(db, {
        event_type: 'orders.placed',
        source_service: 'test.orders',
        payload: { order: 1, lines: [{ sku: 'a', qty: 2 }] },
      });
      expect(isSystemEvent(event)).toBe(true);
      expect(event.event_id).toMatch(UUID_V7);
      expect(event).toMatchObject({ target_services: [], version: '1.0', correlation_id: event.event_id });
      expect(Date.parse(event.timestamp)).toBeGreaterThanOrEqual(before);
      const { rows } = await db.query<Record<string, unknown>>(
        `SELECT event_id, event_type, source_service, target_services, payload, "timestamp", correlation_id, version,
                ordering_key, traceparent, published_at, attempts
         FROM events`,
      );
      expect(rows).toEqual([
        {
          event_id: event.event_id,
          event_type: 'orders.placed',
          source_service: 'test.orders',
          target_services: [],
          payload: { order: 1, lines: [{ sku: 'a', qty: 2 }] },
          timestamp: new Date(event.timestamp),
          correlation_id: event.event_id,
          version: '1.0',
          ordering_key: event.event_id,
          traceparent: null,
          published_at: null,
          attempts: 0,
        },
      ]);
    });

    it('keeps the fields a producer gives, including key and trace context', async () => {
      const db = fixture.db();
      const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const event = await appendEvent(db, {
        event_id: '0190e9e6-1c3c-7abc-8def-0123456789ab',
        event_type: 'orders.shipped',
        source_service: 'test.orders',
        target_services: ['core.analytics', 'collaborative.sync'],
        payload: {},
        timestamp: new Date('2024-05-01T12:00:00.250Z'),
        correlation_id: 'req-1',
        version: '2.0',
        traceparent,
        key: 'order-1',
      });
      expect(event).toEqual({
        event_id: '0190e9e6-1c3c-7abc-8def-0123456789ab',
        event_type: 'orders.shipped',
        source_service: 'test.orders',
        target_services: ['core.analytics', 'collaborative.sync'],
        payload: {},
        timestamp: '2024-05-01T12:00:00.250Z',
        correlation_id: 'req-1',
        version: '2.0',
      });
      const { rows } = await db.query('SELECT ordering_key, traceparent FROM events');
      expect(rows).toEqual([{ ordering_key: 'order-1', traceparent }]);
    });

    it('commits the event with the change it describes', async () => {
      const db = fixture.db();
      await db.query('CREATE TABLE IF NOT EXISTS outbox_orders (id integer PRIMARY KEY)');
      await db.query('TRUNCATE outbox_orders');
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO outbox_orders VALUES (1)');
        await appendEvent(tx, { event_type: 'orders.placed', source_service: 'test', payload: { id: 1 } });
      });
      expect((await db.query('SELECT count(*) AS n FROM outbox_orders')).rows).toEqual([{ n: 1 }]);
      expect((await db.query('SELECT count(*) AS n FROM events')).rows).toEqual([{ n: 1 }]);
    });

    it('writes no event when the change rolls back', async () => {
      const db = fixture.db();
      await db.query('CREATE TABLE IF NOT EXISTS outbox_orders (id integer PRIMARY KEY)');
      await db.query('TRUNCATE outbox_orders');
      await db.query('INSERT INTO outbox_orders VALUES (1)');
      const failed = db.transaction(async (tx) => {
        await appendEvent(tx, { event_type: 'orders.placed', source_service: 'test', payload: { id: 1 } });
        await tx.query('INSERT INTO outbox_orders VALUES (1)'); // duplicate: the change fails after the event
      });
      await expect(failed).rejects.toSatisfy(isUniqueViolation);
      expect((await db.query('SELECT count(*) AS n FROM events')).rows).toEqual([{ n: 0 }]);
    });

    it('refuses a malformed event before writing anything', async () => {
      const db = fixture.db();
      const bad = [
        { event_type: 'orders.*', source_service: 'test', payload: {} },
        { event_type: 'orders placed', source_service: 'test', payload: {} },
        { event_type: '', source_service: 'test', payload: {} },
        { event_type: 'orders.placed', source_service: '', payload: {} },
        { event_type: 'orders.placed', source_service: 'test', payload: [1, 2] },
        { event_type: 'orders.placed', source_service: 'test', payload: {}, timestamp: 'not a date' },
        { event_type: 'orders.placed', source_service: 'test', payload: {}, correlation_id: 'x'.repeat(257) },
        { event_type: 'orders.placed', source_service: 'test', payload: {}, key: 'line\nbreak' },
        { event_type: 'orders.placed', source_service: 'test', payload: {}, traceparent: '' },
      ];
      for (const input of bad) await expect(appendEvent(db, input)).rejects.toBeInstanceOf(InvalidEventError);
      expect((await db.query('SELECT count(*) AS n FROM events')).rows).toEqual([{ n: 0 }]);
    });

    it('reports a reused event_id as a unique violation', async () => {
      const db = fixture.db();
      const event = await appendEvent(db, { event_type: 'orders.placed', source_service: 'test', payload: {} });
      const again = appendEvent(db, { event_id: event.event_id, event_type: 'orders.placed', source_service: 'test', payload: {} });
      await expect(again).rejects.toSatisfy(isUniqueViolation);
    });
  });
});
