import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Delivery } from '../../../src/platform/bus/port.ts';
import { appendEvent } from '../../../src/platform/events/outbox.ts';
import { createOutboxRelay, DEAD_LETTERED_EVENT } from '../../../src/platform/events/relay.ts';
import type { SystemEvent } from '../../../src/platform/events/types.ts';
import { natsBusFixture, redisBusFixture } from '../../conformance/bus.fixtures.ts';
import type { BusFixture } from '../../conformance/bus.suite.ts';
import { forEachDatabase } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';

const postgres = await probeService('postgres');
const nats = await probeService('nats');
const redis = await probeService('redis');

/**
 * The relay against real brokers: many publishes in flight on one connection keep each key's order,
 * and a message the broker refuses (NATS: larger than its max_payload) is moved aside while the
 * rest of its key goes on.
 */
describe('outbox relay on real brokers', () => {
  const fixtures: BusFixture[] = [];
  afterEach(async () => {
    await Promise.all(fixtures.splice(0).map((fixture) => fixture.cleanup()));
  });
  const open = async (make: () => Promise<BusFixture>): Promise<BusFixture> => {
    const fixture = await make();
    fixtures.push(fixture);
    return fixture;
  };

  const brokers = [
    { name: 'NATS JetStream', probe: nats, make: () => natsBusFixture(nats.url) },
    { name: 'Redis Streams', probe: redis, make: () => redisBusFixture(redis.url) },
  ];

  forEachDatabase(postgres, (database) => {
    for (const broker of brokers) {
      describe.skipIf(!broker.probe.ok)(broker.name, () => {
        it('publishes a backlog with many in flight: every event once, each key in commit order', async () => {
          const db = database.db();
          const { bus } = await open(broker.make);
          const received: Delivery[] = [];
          await bus.subscribe({ consumer: 'relay-order', subject: 'orders.>', concurrency: 64 }, async (delivery) => {
            received.push(delivery);
          });
          const events: SystemEvent[] = [];
          for (let i = 0; i < 600; i += 1) {
            events.push(await appendEvent(db, { event_type: 'orders.placed', source_service: 'test', payload: { i }, key: `k${i % 40}` }));
          }
          const relay = createOutboxRelay({ db, bus, batchSize: 250, exclusive: false });
          expect(await relay.flush()).toEqual({ published: 600, failed: 0 });
          await vi.waitFor(() => expect(received).toHaveLength(600), { timeout: 15_000 });
          expect(new Set(received.map((d) => d.id)).size).toBe(600);
          // A subscriber handles each key in stream order, so what it saw is the order the relay stored them in.
          for (let k = 0; k < 40; k += 1) {
            expect(received.filter((d) => d.key === `k${k}`).map((d) => d.id)).toEqual(
              events.filter((_, i) => i % 40 === k).map((e) => e.event_id),
            );
          }
        });
      });
    }

    describe.skipIf(!nats.ok)('NATS JetStream refusing a message', () => {
      it('moves an event larger than max_payload aside after max_attempts, announces it, and publishes the rest of its key', async () => {
        const db = database.db();
        const { bus } = await open(() => natsBusFixture(nats.url));
        const received: Delivery[] = [];
        await bus.subscribe({ consumer: 'relay-dead', subject: '>' }, async (delivery) => void received.push(delivery));
        // 2 MB of payload: NATS's default max_payload is 1 MB, so the server will never store it.
        const huge = await appendEvent(db, {
          event_type: 'orders.placed',
          source_service: 'test',
          payload: { blob: 'x'.repeat(2 * 1024 * 1024) },
          key: 'order-1',
        });
        const next = await appendEvent(db, { event_type: 'orders.shipped', source_service: 'test', payload: {}, key: 'order-1' });
        const dead: string[] = [];
        const relay = createOutboxRelay({ db, bus, exclusive: false, maxAttempts: 2, onDeadLetter: (event) => dead.push(event.event_id) });
        expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
        expect(await relay.flush()).toEqual({ published: 0, failed: 1 });
        expect(dead).toEqual([huge.event_id]);
        const { rows } = await db.query<{ rejections: number; last_error: string }>(
          'SELECT rejections, last_error FROM outbox_dead_letters WHERE event_id = $1',
          [huge.event_id],
        );
        expect(rows).toEqual([{ rejections: 2, last_error: expect.stringMatching(/payload/i) }]);
        expect(await relay.flush()).toEqual({ published: 2, failed: 0 });
        await vi.waitFor(() => expect(received.map((d) => d.subject).sort()).toEqual(['orders.shipped', DEAD_LETTERED_EVENT].sort()), {
          timeout: 10_000,
        });
        expect(received.find((d) => d.subject === 'orders.shipped')?.id).toBe(next.event_id);
      });
    });
  });
});
