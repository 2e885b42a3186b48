import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEAD_LETTER_HEADERS } from '../../src/platform/bus/port.ts';
import type { Delivery, EventBus, Handler, SubscribeOptions, Subscription } from '../../src/platform/bus/port.ts';
import { busEphemeralSuite } from './bus.ephemeral-suite.ts';
import type { BusProcessConfig, BusProcessTarget } from './fixtures/bus-process.ts';

/**
 * The event bus conformance suite: every adapter runs these cases. Timings are short on purpose
 * (ack wait 1 s unless the adapter needs more, retry delay 10 ms) so the suite stays fast against
 * real brokers.
 */

/** A fresh bus in a namespace (stream, key prefix) no other test uses. */
export interface BusFixture {
  readonly bus: EventBus;
  /** Opens another bus on the same namespace, as another process would. Absent when the adapter cannot share one. */
  readonly openPeer?: () => Promise<EventBus>;
  /** Closes the bus and its peers and deletes what the namespace left on the broker. */
  readonly cleanup: () => Promise<void>;
  /**
   * Asks the broker itself whether it still holds anything of `consumer`. Absent for the
   * in-process bus, which has no broker apart from itself: there the suite's lag checks (a removed
   * consumer collects nothing) are the whole check.
   */
  readonly consumerExists?: (consumer: string) => Promise<boolean>;
}

export const busCases = {
  roundTrip: 'delivers a published message with its data, id, key and headers intact',
  singleWildcard: "matches '*' against exactly one token",
  tailWildcard: "matches '>' against one or more trailing tokens",
  validation: 'rejects malformed subjects, patterns, consumer names, messages and options',
  conflict: 'rejects subscribing an existing consumer to another subject',
  sharedConsumer: "splits one consumer's messages between its subscribers, handling each once",
  separateConsumers: 'gives every consumer every message',
  offline: 'keeps messages published while a consumer has no subscriber and delivers them to the next one',
  createdLater: 'does not deliver messages published before the consumer was first created',
  duplicate: 'stores a message published twice with the same id once',
  retry: 'retries a failing handler with an increasing attempt number, then settles it',
  deadLetter: 'dead-letters a poison message after maxDeliver attempts and does not deliver it again',
  stopMidHandler: 'redelivers a delivery left unsettled by a stopped subscriber to another subscriber after ack wait',
  closeMidHandler: 'redelivers a delivery left unsettled by a closed bus (a dead process) to a peer after ack wait',
  dyingSubscribers: 'dead-letters a message whose subscribers keep dying once its deliveries pass maxDeliver',
  longHandler: 'keeps a delivery whose handler outlives the ack wait from being redelivered',
  keyOrder: 'handles same-key messages one at a time in publish order, other keys concurrently',
  lag: 'counts unacked messages of the consumer in lag until they are handled',
  lifecycle: 'answers ping and refuses work once closed',
  killed: 'process killed with messages queued, restarted: every message delivered, once per consumer',
} as const;

export type BusCase = keyof typeof busCases;

export interface BusSuiteOptions {
  /** Cases the adapter cannot meet, each with the reason (printed when the suite runs). */
  readonly notApplicable?: Partial<Record<BusCase, string>>;
  /** Ack wait the cases use; default 1 000. An adapter that needs longer says why where it sets it. */
  readonly ackWaitMs?: number;
  /**
   * Where a bus process of the kill case (fixtures/bus-process.ts) finds its namespace, fresh for
   * the case, and how to remove it after. Every adapter has one unless the case is not applicable.
   */
  readonly processTarget?: () => Promise<{ readonly target: BusProcessTarget; readonly cleanup: () => Promise<void> }>;
}

const QUICK = { timeout: 5_000, interval: 10 } as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const BUS_PROCESS = fileURLToPath(new URL('./fixtures/bus-process.ts', import.meta.url));

const readIds = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

/** Starts a bus process; `progress` resolves once it reports `event` (with `n` at least `atLeast`). */
const startBusProcess = (config: BusProcessConfig) => {
  const child = spawn(process.execPath, [BUS_PROCESS, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const seen: Array<{ event: string; n?: number }> = [];
  const waiting = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    seen.push(JSON.parse(line) as { event: string; n?: number });
    for (const wake of [...waiting]) wake();
  });
  const progress = (event: string, atLeast = 0): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!seen.some((e) => e.event === event && (e.n ?? 0) >= atLeast)) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      check();
      void exited.then(() => reject(new Error(`bus process exited before '${event}' ${atLeast}`)));
    });
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  return { child, progress, kill, exited };
};

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

export function busSuite(name: string, makeBus: () => Promise<BusFixture>, options: BusSuiteOptions = {}): void {
  const ACK_WAIT_MS = options.ackWaitMs ?? 1_000;
  const FAST = { ackWaitMs: ACK_WAIT_MS, retryDelayMs: 10 } as const;
  /** Longest a redelivery after ack wait may take on a slow machine. */
  const REDELIVERY_TIMEOUT = { timeout: ACK_WAIT_MS * 5, interval: 20 } as const;
  /** Room for the redelivery cases: a few ack waits each. */
  const SLOW_CASE_MS = 10_000 + ACK_WAIT_MS * 8;

  describe(`event bus conformance: ${name}`, () => {
    let fixture: BusFixture;
    let bus: EventBus;
    const gates: Gate[] = [];

    /** A promise a handler can wait on; every gate opens after each test so no handler outlives it. */
    const gate = (): Gate => {
      let open = (): void => undefined;
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      const created = { promise, open };
      gates.push(created);
      return created;
    };

    const recorder = (): { deliveries: Delivery[]; handler: Handler } => {
      const deliveries: Delivery[] = [];
      return { deliveries, handler: async (delivery) => void deliveries.push(delivery) };
    };

    const subscribe = (
      opts: Partial<SubscribeOptions> & Pick<SubscribeOptions, 'consumer' | 'subject'>,
      handler: Handler,
      on = bus,
    ): Promise<Subscription> => on.subscribe({ ...FAST, ...opts }, handler);

    beforeEach(async () => {
      fixture = await makeBus();
      bus = fixture.bus;
    });

    afterEach(async () => {
      for (const open of gates.splice(0)) open.open();
      await fixture.cleanup();
    });

    const notApplicable = options.notApplicable ?? {};
    const test = (id: BusCase, body: () => Promise<void>, timeout?: number): void => {
      const reason = notApplicable[id];
      if (reason !== undefined) {
        console.info(`[${name}] not applicable: ${busCases[id]}: ${reason}`);
        return;
      }
      it(busCases[id], body, timeout);
    };

    test('roundTrip', async () => {
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'audit', subject: 'orders.created' }, handler);
      const data = { order: 42, items: [{ sku: 'a-1', qty: 2 }], note: 'ünïcode ✓', none: null };
      await bus.publish({
        subject: 'orders.created',
        data,
        id: 'evt-1',
        key: 'order-42',
        headers: { traceparent: '00-abc-def-01', 'X-Tenant': 'acme' },
      });
      await vi.waitFor(() => expect(deliveries).toHaveLength(1), QUICK);
      expect(deliveries[0]).toEqual({
        subject: 'orders.created',
        data,
        id: 'evt-1',
        key: 'order-42',
        headers: { traceparent: '00-abc-def-01', 'X-Tenant': 'acme' },
        attempt: 1,
      });

      await bus.publish({ subject: 'orders.created', data: 'plain' });
      await vi.waitFor(() => expect(deliveries).toHaveLength(2), QUICK);
      expect(deliveries[1]).toMatchObject({ data: 'plain', key: undefined, headers: {}, attempt: 1 });
      expect(deliveries[1]?.id).toMatch(/\S/);
      expect(deliveries[1]?.id).not.toBe('evt-1');
    });

    /** Publishes `subjects` then a matching sentinel; with concurrency 1 the sentinel arrives last. */
    const receivedOf = async (pattern: string, subjects: readonly string[], sentinel: string): Promise<string[]> => {
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'wild', subject: pattern, concurrency: 1 }, handler);
      for (const subject of subjects) await bus.publish({ subject, data: subject });
      await bus.publish({ subject: sentinel, data: 'sentinel' });
      await vi.waitFor(() => expect(deliveries.some((delivery) => delivery.data === 'sentinel')).toBe(true), QUICK);
      return deliveries.map((delivery) => delivery.subject);
    };

    test('singleWildcard', async () => {
      const received = await receivedOf(
        'orders.*.v1',
        ['orders.created.v1', 'orders.created.v2', 'orders.v1', 'orders.a.b.v1', 'orders.updated.v1', 'payments.created.v1'],
        'orders.zz.v1',
      );
      expect(received).toEqual(['orders.created.v1', 'orders.updated.v1', 'orders.zz.v1']);
    });

    test('tailWildcard', async () => {
      const received = await receivedOf(
        'orders.>',
        ['orders', 'orders.created', 'ordersx.created', 'orders.created.eu.west', 'payments.orders.created'],
        'orders.zz',
      );
      expect(received).toEqual(['orders.created', 'orders.created.eu.west', 'orders.zz']);
    });

    test('validation', async () => {
      const noop: Handler = async () => undefined;
      for (const subject of ['', 'a..b', '.a', 'a.', 'a.*', 'a.>', 'a b', 'a.b\n', 'ä.b']) {
        await expect(bus.publish({ subject, data: 1 }), subject).rejects.toMatchObject({ code: 'BUS_INVALID_SUBJECT' });
      }
      for (const subject of ['', 'a.>.b', 'a.b*', '>.a', 'a..*', 'a.>>']) {
        await expect(bus.subscribe({ consumer: 'ok', subject }, noop), subject).rejects.toMatchObject({
          code: 'BUS_INVALID_SUBJECT',
        });
      }
      for (const consumer of ['', 'a.b', 'a b', 'a*', 'a>', 'x'.repeat(65)]) {
        await expect(bus.subscribe({ consumer, subject: 'a.b' }, noop), consumer).rejects.toMatchObject({
          code: 'BUS_INVALID_CONSUMER',
        });
        await expect(bus.lag(consumer), consumer).rejects.toMatchObject({ code: 'BUS_INVALID_CONSUMER' });
      }
      await expect(bus.publish({ subject: 'a.b', data: { big: 1n } })).rejects.toMatchObject({ code: 'BUS_INVALID_MESSAGE' });
      await expect(bus.publish({ subject: 'a.b', data: 1, headers: { 'x-bus-key': 'k' } })).rejects.toMatchObject({
        code: 'BUS_INVALID_MESSAGE',
      });
      await expect(bus.publish({ subject: 'a.b', data: 1, headers: { h: 'two\r\nlines' } })).rejects.toMatchObject({
        code: 'BUS_INVALID_MESSAGE',
      });
      await expect(bus.publish({ subject: 'a.b', data: 1, id: 'bad\nid' })).rejects.toMatchObject({
        code: 'BUS_INVALID_MESSAGE',
      });
      for (const bad of [{ maxDeliver: 0 }, { concurrency: 0 }, { ackWaitMs: 10 }, { retryDelayMs: -1 }, { concurrency: 1.5 }]) {
        await expect(bus.subscribe({ consumer: 'ok', subject: 'a.b', ...bad }, noop), JSON.stringify(bad)).rejects.toMatchObject({
          code: 'BUS_INVALID_OPTIONS',
        });
      }
      // Nothing above was stored or created.
      expect(await bus.lag('ok')).toBe(0);
    });

    test('conflict', async () => {
      const first = await subscribe({ consumer: 'orders', subject: 'orders.created' }, async () => undefined);
      await expect(subscribe({ consumer: 'orders', subject: 'orders.*' }, async () => undefined)).rejects.toMatchObject({
        code: 'BUS_CONSUMER_CONFLICT',
      });
      await first.stop();
      await expect(subscribe({ consumer: 'orders', subject: 'orders.updated' }, async () => undefined)).rejects.toMatchObject({
        code: 'BUS_CONSUMER_CONFLICT',
      });
      const again = await subscribe({ consumer: 'orders', subject: 'orders.created' }, async () => undefined);
      await again.stop();
    });

    test('sharedConsumer', async () => {
      const handledBy = new Map<string, string[]>();
      const worker =
        (who: string): Handler =>
        async (delivery) => {
          handledBy.set(delivery.id, [...(handledBy.get(delivery.id) ?? []), who]);
          await sleep(15);
        };
      await subscribe({ consumer: 'workers', subject: 'jobs.run', concurrency: 2 }, worker('a'));
      await subscribe({ consumer: 'workers', subject: 'jobs.run', concurrency: 2 }, worker('b'));
      const ids = Array.from({ length: 30 }, (_, index) => `job-${index}`);
      for (const id of ids) await bus.publish({ subject: 'jobs.run', data: id, id });
      await vi.waitFor(() => expect(handledBy.size).toBe(ids.length), QUICK);
      await sleep(300);
      expect([...handledBy.keys()].sort()).toEqual([...ids].sort());
      const handlers = [...handledBy.values()];
      expect(handlers.filter((who) => who.length !== 1)).toEqual([]);
      expect(handlers.filter((who) => who[0] === 'a').length).toBeGreaterThan(0);
      expect(handlers.filter((who) => who[0] === 'b').length).toBeGreaterThan(0);
    });

    test('separateConsumers', async () => {
      const billing = recorder();
      const shipping = recorder();
      await subscribe({ consumer: 'billing', subject: 'orders.*' }, billing.handler);
      await subscribe({ consumer: 'shipping', subject: 'orders.>' }, shipping.handler);
      for (let index = 0; index < 10; index += 1) await bus.publish({ subject: 'orders.created', data: index, id: `o-${index}` });
      await vi.waitFor(() => {
        expect(billing.deliveries).toHaveLength(10);
        expect(shipping.deliveries).toHaveLength(10);
      }, QUICK);
      await sleep(200);
      const ids = (deliveries: Delivery[]): string[] => deliveries.map((delivery) => delivery.id).sort();
      expect(ids(billing.deliveries)).toEqual(ids(shipping.deliveries));
      expect(new Set(ids(billing.deliveries)).size).toBe(10);
    });

    test('offline', async () => {
      const first = await subscribe({ consumer: 'mailer', subject: 'mail.send' }, async () => undefined);
      await first.stop();
      for (let index = 0; index < 5; index += 1) await bus.publish({ subject: 'mail.send', data: index });
      expect(await bus.lag('mailer')).toBe(5);
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'mailer', subject: 'mail.send', concurrency: 1 }, handler);
      await vi.waitFor(() => expect(deliveries).toHaveLength(5), QUICK);
      expect(deliveries.map((delivery) => [delivery.data, delivery.attempt])).toEqual([0, 1, 2, 3, 4].map((n) => [n, 1]));
      await vi.waitFor(async () => expect(await bus.lag('mailer')).toBe(0), QUICK);
    });

    test('createdLater', async () => {
      await bus.publish({ subject: 'news.posted', data: 'before' });
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'late', subject: 'news.posted', concurrency: 1 }, handler);
      await bus.publish({ subject: 'news.posted', data: 'after' });
      await vi.waitFor(() => expect(deliveries.map((delivery) => delivery.data)).toContain('after'), QUICK);
      expect(deliveries.map((delivery) => delivery.data)).toEqual(['after']);
    });

    test('duplicate', async () => {
      const { deliveries, handler } = recorder();
      await subscribe({ consumer: 'dedup', subject: 'pay.captured', concurrency: 1 }, handler);
      await bus.publish({ subject: 'pay.captured', data: 'first', id: 'same-id' });
      await bus.publish({ subject: 'pay.captured', data: 'second', id: 'same-id' });
      await bus.publish({ subject: 'pay.captured', data: 'sentinel', id: 'other-id' });
      await vi.waitFor(() => expect(deliveries.map((delivery) => delivery.data)).toContain('sentinel'), QUICK);
      expect(deliveries.map((delivery) => delivery.data)).toEqual(['first', 'sentinel']);
    });

    test('retry', async () => {
      const attempts: number[] = [];
      await subscribe({ consumer: 'flaky', subject: 'work.do', maxDeliver: 5 }, async (delivery) => {
        attempts.push(delivery.attempt);
        if (delivery.attempt < 3) throw new Error(`transient failure ${delivery.attempt}`);
      });
      await bus.publish({ subject: 'work.do', data: 1 });
      await vi.waitFor(() => expect(attempts).toEqual([1, 2, 3]), QUICK);
      await vi.waitFor(async () => expect(await bus.lag('flaky')).toBe(0), QUICK);
      await sleep(ACK_WAIT_MS + 300);
      expect(attempts).toEqual([1, 2, 3]);
    });

    test('deadLetter', async () => {
      const dead = recorder();
      await subscribe({ consumer: 'dlq-reader', subject: 'dlq.poisoned.>' }, dead.handler);
      const attempts: number[] = [];
      await subscribe({ consumer: 'poisoned', subject: 'orders.created', maxDeliver: 3 }, async (delivery) => {
        attempts.push(delivery.attempt);
        throw new Error('boom: cannot parse order');
      });
      await bus.publish({ subject: 'orders.created', data: { order: 7 }, id: 'poison-1', key: 'o7', headers: { traceparent: 't-1' } });
      await vi.waitFor(() => expect(dead.deliveries).toHaveLength(1), QUICK);
      const letter = dead.deliveries[0];
      expect(letter).toMatchObject({ subject: 'dlq.poisoned.orders.created', data: { order: 7 }, key: 'o7' });
      expect(letter?.id).not.toBe('poison-1');
      expect(letter?.headers).toMatchObject({
        traceparent: 't-1',
        [DEAD_LETTER_HEADERS.originalSubject]: 'orders.created',
        [DEAD_LETTER_HEADERS.attempts]: '3',
        [DEAD_LETTER_HEADERS.consumer]: 'poisoned',
      });
      expect(letter?.headers[DEAD_LETTER_HEADERS.reason]).toContain('boom: cannot parse order');
      expect(attempts).toEqual([1, 2, 3]);
      await vi.waitFor(async () => expect(await bus.lag('poisoned')).toBe(0), QUICK);
      await sleep(ACK_WAIT_MS + 500);
      expect(attempts).toEqual([1, 2, 3]);
      expect(dead.deliveries).toHaveLength(1);
    });

    /** Subscribes a handler that reports its delivery and then hangs until the test ends. */
    const hangingSubscriber = async (
      opts: Partial<SubscribeOptions> & Pick<SubscribeOptions, 'consumer' | 'subject'>,
      on = bus,
    ): Promise<{ subscription: Subscription; received: Promise<Delivery>; release: Gate }> => {
      const release = gate();
      let report = (_delivery: Delivery): void => undefined;
      const received = new Promise<Delivery>((resolve) => {
        report = resolve;
      });
      const subscription = await subscribe(
        opts,
        async (delivery) => {
          report(delivery);
          await release.promise;
        },
        on,
      );
      return { subscription, received, release };
    };

    test(
      'stopMidHandler',
      async () => {
        const a = await hangingSubscriber({ consumer: 'handoff', subject: 'task.run' });
        await bus.publish({ subject: 'task.run', data: 'x', id: 'task-1' });
        expect(await a.received).toMatchObject({ id: 'task-1', attempt: 1 });
        const b = recorder();
        await subscribe({ consumer: 'handoff', subject: 'task.run' }, b.handler);
        await a.subscription.stop();
        // The stopped subscriber's handler now finishes; that must not settle the delivery.
        a.release.open();
        await vi.waitFor(() => expect(b.deliveries.length).toBeGreaterThan(0), REDELIVERY_TIMEOUT);
        await sleep(200);
        expect(b.deliveries.map(({ id, attempt }) => ({ id, attempt }))).toEqual([{ id: 'task-1', attempt: 2 }]);
        expect(b.deliveries[0]?.data).toBe('x');
        await vi.waitFor(async () => expect(await bus.lag('handoff')).toBe(0), QUICK);
      },
      SLOW_CASE_MS,
    );

    test(
      'closeMidHandler',
      async () => {
        const openPeer = fixture.openPeer;
        if (openPeer === undefined) throw new Error('closeMidHandler needs openPeer; declare it not applicable instead');
        const peer = await openPeer();
        const a = await hangingSubscriber({ consumer: 'handoff', subject: 'task.run' }, peer);
        await bus.publish({ subject: 'task.run', data: 'x', id: 'task-2' });
        expect(await a.received).toMatchObject({ id: 'task-2', attempt: 1 });
        const b = recorder();
        await subscribe({ consumer: 'handoff', subject: 'task.run' }, b.handler);
        await peer.close();
        a.release.open();
        await vi.waitFor(() => expect(b.deliveries.length).toBeGreaterThan(0), REDELIVERY_TIMEOUT);
        await sleep(200);
        expect(b.deliveries.map(({ id, attempt }) => ({ id, attempt }))).toEqual([{ id: 'task-2', attempt: 2 }]);
        await expect(peer.publish({ subject: 'task.run', data: 'y' })).rejects.toMatchObject({ code: 'BUS_CLOSED' });
      },
      SLOW_CASE_MS,
    );

    test(
      'dyingSubscribers',
      async () => {
        const dead = recorder();
        await subscribe({ consumer: 'dlq-reader', subject: 'dlq.fragile.>' }, dead.handler);
        const opts = { consumer: 'fragile', subject: 'task.run', maxDeliver: 2 } as const;
        const first = await hangingSubscriber(opts);
        await bus.publish({ subject: 'task.run', data: 'crashes-its-worker', id: 'fatal-1' });
        expect((await first.received).attempt).toBe(1);
        await first.subscription.stop();
        const second = await hangingSubscriber(opts);
        expect(await second.received).toMatchObject({ id: 'fatal-1', attempt: 2 });
        await second.subscription.stop();
        const third = recorder();
        await subscribe(opts, third.handler);
        await vi.waitFor(() => expect(dead.deliveries).toHaveLength(1), REDELIVERY_TIMEOUT);
        expect(dead.deliveries[0]?.headers).toMatchObject({
          [DEAD_LETTER_HEADERS.attempts]: '2',
          [DEAD_LETTER_HEADERS.consumer]: 'fragile',
        });
        expect(dead.deliveries[0]?.headers[DEAD_LETTER_HEADERS.reason]).toMatch(/not settled/);
        expect(third.deliveries).toEqual([]);
        await vi.waitFor(async () => expect(await bus.lag('fragile')).toBe(0), QUICK);
      },
      SLOW_CASE_MS,
    );

    test(
      'longHandler',
      async () => {
        const attempts: number[] = [];
        let done = false;
        await subscribe({ consumer: 'slow', subject: 'report.build' }, async (delivery) => {
          attempts.push(delivery.attempt);
          await sleep(ACK_WAIT_MS * 2.5);
          done = true;
        });
        await bus.publish({ subject: 'report.build', data: 'big' });
        await vi.waitFor(() => expect(attempts).toEqual([1]), QUICK);
        const other = recorder();
        await subscribe({ consumer: 'slow', subject: 'report.build' }, other.handler);
        await vi.waitFor(() => expect(done).toBe(true), { timeout: ACK_WAIT_MS * 5, interval: 20 });
        await vi.waitFor(async () => expect(await bus.lag('slow')).toBe(0), QUICK);
        await sleep(ACK_WAIT_MS + 300);
        expect(attempts).toEqual([1]);
        expect(other.deliveries).toEqual([]);
      },
      SLOW_CASE_MS,
    );

    test(
      'keyOrder',
      async () => {
        const keys = ['k0', 'k1', 'k2'];
        const perKey = 30;
        const handled = new Map<string, number[]>(keys.map((key) => [key, []]));
        const running = new Set<string>();
        const overlaps: string[] = [];
        let inFlight = 0;
        let maxInFlight = 0;
        const failedOnce = new Set<string>();
        await subscribe({ consumer: 'ordered', subject: 'ledger.*', concurrency: 4, retryDelayMs: 5 }, async (delivery) => {
          const key = delivery.key ?? 'none';
          if (running.has(key)) overlaps.push(`${key}:${String(delivery.data)}`);
          running.add(key);
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            await sleep(Math.floor(Math.random() * 5));
            const n = delivery.data as number;
            // A failure must hold back the key's later messages until the retry succeeds.
            if (n % 7 === 3 && !failedOnce.has(delivery.id)) {
              failedOnce.add(delivery.id);
              throw new Error('first attempt fails');
            }
            handled.get(key)?.push(n);
          } finally {
            running.delete(key);
            inFlight -= 1;
          }
        });
        for (let n = 0; n < perKey; n += 1) {
          for (const key of keys) await bus.publish({ subject: `ledger.${key}`, data: n, key, id: `${key}-${n}` });
        }
        const expected = Array.from({ length: perKey }, (_, n) => n);
        await vi.waitFor(
          () => {
            for (const key of keys) expect(handled.get(key)).toHaveLength(perKey);
          },
          { timeout: 15_000, interval: 20 },
        );
        for (const key of keys) expect(handled.get(key), key).toEqual(expected);
        expect(overlaps).toEqual([]);
        expect(failedOnce.size).toBe(keys.length * expected.filter((n) => n % 7 === 3).length);
        expect(maxInFlight).toBeGreaterThan(1);
        expect(maxInFlight).toBeLessThanOrEqual(keys.length);
      },
      SLOW_CASE_MS,
    );

    test('lag', async () => {
      expect(await bus.lag('never-subscribed')).toBe(0);
      const created = await subscribe({ consumer: 'indexer', subject: 'docs.*' }, async () => undefined);
      await created.stop();
      for (let index = 0; index < 3; index += 1) await bus.publish({ subject: 'docs.saved', data: index });
      await bus.publish({ subject: 'images.saved', data: 'other subject' });
      await bus.publish({ subject: 'docs.saved.thumbnail', data: 'deeper subject' });
      expect(await bus.lag('indexer')).toBe(3);
      const release = gate();
      let started = 0;
      await subscribe({ consumer: 'indexer', subject: 'docs.*' }, async () => {
        started += 1;
        await release.promise;
      });
      await vi.waitFor(() => expect(started).toBe(3), QUICK);
      expect(await bus.lag('indexer')).toBe(3);
      release.open();
      await vi.waitFor(async () => expect(await bus.lag('indexer')).toBe(0), QUICK);
      await bus.publish({ subject: 'docs.saved', data: 'again' });
      await vi.waitFor(() => expect(started).toBe(4), QUICK);
      await vi.waitFor(async () => expect(await bus.lag('indexer')).toBe(0), QUICK);
    });

    test('lifecycle', async () => {
      const rtt = await bus.ping();
      expect(Number.isFinite(rtt)).toBe(true);
      expect(rtt).toBeGreaterThanOrEqual(0);
      const subscription = await subscribe({ consumer: 'closing', subject: 'a.b' }, async () => undefined);
      await bus.close();
      await bus.close();
      await subscription.stop();
      await expect(bus.publish({ subject: 'a.b', data: 1 })).rejects.toMatchObject({ code: 'BUS_CLOSED' });
      await expect(bus.subscribe({ consumer: 'closing', subject: 'a.b' }, async () => undefined)).rejects.toMatchObject({
        code: 'BUS_CLOSED',
      });
      await expect(bus.ping()).rejects.toMatchObject({ code: 'BUS_CLOSED' });
    });

    test('killed', async () => {
      if (options.processTarget === undefined) throw new Error(`the ${name} fixture names no process target for the kill case`);
      const { target, cleanup } = await options.processTarget();
      const recordDir = mkdtempSync(join(tmpdir(), 'bus-killed-'));
      const running: Array<ReturnType<typeof startBusProcess>> = [];
      try {
        const consumers = ['usage', 'learning'];
        const config: BusProcessConfig = {
          target,
          mode: 'publish',
          recordDir,
          consumers,
          subject: 'calls.completed',
          count: 5_000,
          handleMs: 2,
          ackWaitMs: ACK_WAIT_MS,
        };
        const first = startBusProcess(config);
        running.push(first);
        await first.progress('subscribed');
        // Killed mid-load: the publisher is ahead of the consumers, each handling one at a time.
        await first.progress('published', 600);
        await first.kill();
        const published = readIds(join(recordDir, 'published'));
        const handledBefore = consumers.map((consumer) => readIds(join(recordDir, consumer)).length);
        expect(published.length).toBeGreaterThanOrEqual(600);
        // Something was queued when it died, or the case proves nothing.
        for (const count of handledBefore) expect(count).toBeLessThan(published.length);

        const second = startBusProcess({ ...config, mode: 'consume' });
        running.push(second);
        await second.progress('subscribed');
        await vi.waitFor(
          () => {
            for (const consumer of consumers) {
              const handled = new Set(readIds(join(recordDir, consumer)));
              expect(
                published.filter((id) => !handled.has(id)),
                consumer,
              ).toEqual([]);
            }
          },
          { timeout: 60_000, interval: 200 },
        );
        const attempted = new Set(Array.from({ length: config.count }, (_, n) => `m-${n + 1}`));
        for (const consumer of consumers) {
          const handled = readIds(join(recordDir, consumer));
          // Once per consumer: the inbox file holds each id once, and nothing that was never published.
          expect(handled.length, consumer).toBe(new Set(handled).size);
          expect(
            handled.filter((id) => !attempted.has(id)),
            consumer,
          ).toEqual([]);
        }
      } finally {
        for (const child of running) await child.kill();
        await cleanup();
        rmSync(recordDir, { recursive: true, force: true });
      }
    }, 120_000);
  });

  busEphemeralSuite(name, makeBus, ACK_WAIT_MS);
}
