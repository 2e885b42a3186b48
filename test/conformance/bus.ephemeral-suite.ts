import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, EventBus, Handler, SubscribeOptions, Subscription } from '../../src/platform/bus/port.ts';
import type { BusFixture } from './bus.suite.ts';

/**
 * Conformance cases for ephemeral consumers (`SubscribeOptions.ephemeral`), run by `busSuite`
 * for every adapter. What happens when a process holding one dies is adapter-specific (the
 * broker's inactivity bound) and lives in test/platform/bus/crash-recovery.test.ts.
 */

export const ephemeralCases = {
  live: 'gives an ephemeral consumer the messages published while its subscriber runs',
  fresh: 'starts an ephemeral consumer afresh after its subscriber stopped: what was published in between is not delivered',
  removed: 'removes an ephemeral consumer, pending messages and all, when its subscriber stops or its bus closes',
  recreated: 'recreates an ephemeral consumer removed under a subscriber that still runs',
  conflict: 'keeps a consumer name either durable or ephemeral while the consumer exists',
} as const;

const QUICK = { timeout: 5_000, interval: 10 } as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function busEphemeralSuite(name: string, makeBus: () => Promise<BusFixture>, ackWaitMs: number): void {
  const FAST = { ackWaitMs, retryDelayMs: 10, ephemeral: true } as const;

  describe(`event bus conformance: ${name}: ephemeral consumers`, () => {
    let fixture: BusFixture;
    let bus: EventBus;
    const releases: (() => void)[] = [];

    beforeEach(async () => {
      fixture = await makeBus();
      bus = fixture.bus;
    });

    afterEach(async () => {
      for (const release of releases.splice(0)) release();
      await fixture.cleanup();
    });

    const subscribe = (
      opts: Partial<SubscribeOptions> & Pick<SubscribeOptions, 'consumer' | 'subject'>,
      handler: Handler,
      on = bus,
    ): Promise<Subscription> => on.subscribe({ ...FAST, ...opts }, handler);

    const recorder = (): { data: unknown[]; deliveries: Delivery[]; handler: Handler } => {
      const deliveries: Delivery[] = [];
      const data: unknown[] = [];
      return {
        data,
        deliveries,
        handler: async (delivery) => {
          deliveries.push(delivery);
          data.push(delivery.data);
        },
      };
    };

    /** The broker's own answer when the fixture can ask it; `undefined` otherwise. */
    const brokerHolds = async (consumer: string): Promise<boolean | undefined> => fixture.consumerExists?.(consumer);

    it(ephemeralCases.live, async () => {
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'cache-node-a', subject: 'cache.invalidate', concurrency: 1 }, handler);
      expect(await brokerHolds('cache-node-a')).not.toBe(false);
      for (let index = 0; index < 5; index += 1) await bus.publish({ subject: 'cache.invalidate', data: index, id: `inv-${index}` });
      await vi.waitFor(() => expect(deliveries).toHaveLength(5), QUICK);
      expect(deliveries.map(({ data, id, attempt }) => ({ data, id, attempt }))).toEqual(
        [0, 1, 2, 3, 4].map((n) => ({ data: n, id: `inv-${n}`, attempt: 1 })),
      );
      await vi.waitFor(async () => expect(await bus.lag('cache-node-a')).toBe(0), QUICK);
    });

    it(ephemeralCases.fresh, async () => {
      const first = recorder();
      const subscription = await subscribe({ consumer: 'cache-node-b', subject: 'cache.invalidate', concurrency: 1 }, first.handler);
      await bus.publish({ subject: 'cache.invalidate', data: 'while-running' });
      await vi.waitFor(() => expect(first.data).toEqual(['while-running']), QUICK);
      await subscription.stop();

      for (let index = 0; index < 3; index += 1) await bus.publish({ subject: 'cache.invalidate', data: `between-${index}` });
      // A durable consumer would hold these three now; a removed ephemeral one holds nothing.
      expect(await bus.lag('cache-node-b')).toBe(0);

      const second = recorder();
      await subscribe({ consumer: 'cache-node-b', subject: 'cache.invalidate', concurrency: 1 }, second.handler);
      await bus.publish({ subject: 'cache.invalidate', data: 'after' });
      await vi.waitFor(() => expect(second.data).toContain('after'), QUICK);
      await sleep(300);
      expect(second.data).toEqual(['after']);
      expect(second.deliveries[0]?.attempt).toBe(1);
      expect(first.data).toEqual(['while-running']);
    });

    it(
      ephemeralCases.removed,
      async () => {
        const release = new Promise<void>((resolve) => releases.push(resolve));
        let started = 0;
        const subscription = await subscribe({ consumer: 'cache-node-c', subject: 'cache.*', concurrency: 1 }, async () => {
          started += 1;
          await release;
        });
        // One delivery in flight and two waiting: stopping must not keep them for anyone.
        for (let index = 0; index < 3; index += 1) await bus.publish({ subject: 'cache.invalidate', data: index });
        await vi.waitFor(() => expect(started).toBe(1), QUICK);
        expect(await bus.lag('cache-node-c')).toBe(3);
        expect(await brokerHolds('cache-node-c')).not.toBe(false);
        await subscription.stop();
        expect(await brokerHolds('cache-node-c')).not.toBe(true);
        expect(await bus.lag('cache-node-c')).toBe(0);
        await bus.publish({ subject: 'cache.invalidate', data: 'after stop' });
        expect(await bus.lag('cache-node-c')).toBe(0);
        // The in-flight delivery is gone too: no one gets it after its ack wait.
        const later = recorder();
        await subscribe({ consumer: 'cache-node-c', subject: 'cache.*' }, later.handler);
        await sleep(ackWaitMs * 1.5);
        expect(later.data).toEqual([]);

        if (fixture.openPeer === undefined) return;
        // A bus closing (its process shutting down) stops its subscribers, which removes their consumers.
        const peer = await fixture.openPeer();
        await subscribe({ consumer: 'cache-node-d', subject: 'cache.*' }, async () => undefined, peer);
        await bus.publish({ subject: 'cache.invalidate', data: 'to d' });
        expect(await brokerHolds('cache-node-d')).not.toBe(false);
        await peer.close();
        expect(await brokerHolds('cache-node-d')).not.toBe(true);
        await bus.publish({ subject: 'cache.invalidate', data: 'after close' });
        expect(await bus.lag('cache-node-d')).toBe(0);
      },
      10_000 + ackWaitMs * 4,
    );

    it(
      ephemeralCases.recreated,
      async () => {
        const stopping = await subscribe({ consumer: 'cache-shared', subject: 'cache.invalidate' }, async () => undefined);
        const staying = recorder();
        await subscribe({ consumer: 'cache-shared', subject: 'cache.invalidate', concurrency: 1 }, staying.handler);
        // Stopping one subscriber removes the consumer under the other, which must make it again and go on.
        await stopping.stop();
        let probe = 0;
        await vi.waitFor(
          async () => {
            probe += 1;
            await bus.publish({ subject: 'cache.invalidate', data: `probe-${probe}` });
            await sleep(50);
            expect(staying.data.length).toBeGreaterThan(0);
          },
          { timeout: 10_000 + ackWaitMs * 4, interval: 100 },
        );
        expect(await brokerHolds('cache-shared')).not.toBe(false);
        const seen = staying.data.length;
        for (let index = 0; index < 5; index += 1) await bus.publish({ subject: 'cache.invalidate', data: `after-${index}` });
        await vi.waitFor(() => expect(staying.data.length).toBe(seen + 5), QUICK);
        expect(staying.data.slice(seen)).toEqual([0, 1, 2, 3, 4].map((n) => `after-${n}`));
        await vi.waitFor(async () => expect(await bus.lag('cache-shared')).toBe(0), QUICK);
      },
      20_000 + ackWaitMs * 8,
    );

    it(ephemeralCases.conflict, async () => {
      const noop: Handler = async () => undefined;
      const durable = await subscribe({ consumer: 'orders', subject: 'orders.created', ephemeral: false }, noop);
      await durable.stop();
      await expect(subscribe({ consumer: 'orders', subject: 'orders.created' }, noop)).rejects.toMatchObject({
        code: 'BUS_CONSUMER_CONFLICT',
      });

      const ephemeral = await subscribe({ consumer: 'cache-node-e', subject: 'cache.invalidate' }, noop);
      await expect(subscribe({ consumer: 'cache-node-e', subject: 'cache.invalidate', ephemeral: false }, noop)).rejects.toMatchObject({
        code: 'BUS_CONSUMER_CONFLICT',
      });
      await expect(subscribe({ consumer: 'cache-node-e', subject: 'cache.other' }, noop)).rejects.toMatchObject({
        code: 'BUS_CONSUMER_CONFLICT',
      });
      await ephemeral.stop();
      // Once removed, the name is free for either kind.
      const reused = await subscribe({ consumer: 'cache-node-e', subject: 'cache.other', ephemeral: false }, noop);
      await reused.stop();

      const loose = { consumer: 'x', subject: 'a.b', ephemeral: 'yes' } as unknown as SubscribeOptions;
      await expect(bus.subscribe(loose, noop)).rejects.toMatchObject({ code: 'BUS_INVALID_OPTIONS' });
      expect(await bus.lag('orders')).toBe(0);
    });
  });
}
