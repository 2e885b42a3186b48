import { describe, expect, it } from 'vitest';
import { appendEvents } from '../../../src/platform/events/outbox.ts';
import { pruneExpired } from '../../../src/platform/events/retention.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';

const postgres = await probeService('postgres');
const DAY = 86_400_000;

describe('retention', () => {
  forEachDatabase(postgres, (fixture) => {
    it('deletes published events and inbox rows past their age, never an unpublished event', async () => {
      const db = fixture.db();
      const events = await appendEvents(
        db,
        Array.from({ length: 4 }, (_, i) => ({ event_type: 'old.thing', source_service: 'test', payload: { i } })),
      );
      const [oldPublished, oldUnpublished, recentPublished] = events.map((e) => e.event_id);
      await db.query(`UPDATE events SET published_at = now() - interval '40 days' WHERE event_id = $1`, [oldPublished]);
      await db.query(`UPDATE events SET created_at = now() - interval '40 days' WHERE event_id = $1`, [oldUnpublished]);
      await db.query(`UPDATE events SET published_at = now() - interval '1 day' WHERE event_id = $1`, [recentPublished]);
      await db.query(
        `INSERT INTO inbox (consumer, event_id, processed_at) VALUES ('c', 'old', now() - interval '10 days'), ('c', 'new', now())`,
      );

      expect(await pruneExpired(db, { eventsMs: 30 * DAY, inboxMs: 7 * DAY }, Date.now())).toEqual({ events: 1, inbox: 1 });
      const left = await db.query<{ event_id: string }>('SELECT event_id FROM events ORDER BY sequence');
      expect(left.rows.map((r) => r.event_id)).toEqual(events.slice(1).map((e) => e.event_id));
      const inbox = await db.query<{ event_id: string }>('SELECT event_id FROM inbox');
      expect(inbox.rows).toEqual([{ event_id: 'new' }]);
    });

    it('keeps everything when the retention is 0', async () => {
      const db = fixture.db();
      await appendEvents(db, [{ event_type: 'old.thing', source_service: 'test', payload: {} }]);
      await db.query(`UPDATE events SET published_at = now() - interval '4000 days'`);
      expect(await pruneExpired(db, { eventsMs: 0, inboxMs: 0 }, Date.now())).toEqual({ events: 0, inbox: 0 });
    });
  });
});
