import { describe, expect, it } from 'vitest';
import { appendEvents, InvalidEventError } from '../../../src/platform/events/outbox.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';

const postgres = await probeService('postgres');

describe('appendEvents', () => {
  forEachDatabase(postgres, (fixture) => {
    it('writes a batch in one statement, in the order given, each with its key and trace', async () => {
      const db = fixture.db();
      const events = await appendEvents(
        db,
        Array.from({ length: 25 }, (_, i) => ({
          event_type: 'batch.item',
          source_service: 'test',
          target_services: ['a', 'b'],
          payload: { i },
          correlation_id: `c${i}`,
          ...(i % 2 ? { key: `k${i}` } : {}),
          traceparent: `00-${'1'.repeat(32)}-${String(i).padStart(16, '0')}-01`,
        })),
      );
      const { rows } = await db.query<{
        event_id: string;
        payload: { i: number };
        ordering_key: string;
        traceparent: string;
        target_services: string[];
      }>('SELECT event_id, payload, ordering_key, traceparent, target_services FROM events ORDER BY sequence');
      expect(rows.map((r) => r.event_id)).toEqual(events.map((e) => e.event_id));
      expect(rows.map((r) => r.payload.i)).toEqual([...Array(25).keys()]);
      expect(rows[1]).toMatchObject({ ordering_key: 'k1', target_services: ['a', 'b'] });
      expect(rows[2]?.ordering_key).toBe('c2');
      expect(rows[3]?.traceparent).toBe(`00-${'1'.repeat(32)}-0000000000000003-01`);
    });

    it('writes nothing when one event of the batch is invalid', async () => {
      const db = fixture.db();
      await expect(
        appendEvents(db, [
          { event_type: 'fine.event', source_service: 'test', payload: {} },
          { event_type: 'bad subject!', source_service: 'test', payload: {} },
        ]),
      ).rejects.toBeInstanceOf(InvalidEventError);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
      expect(rows[0]?.n).toBe(0);
    });
  });
});
