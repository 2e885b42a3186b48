import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSystemClock } from '../../../src/platform/clock.ts';
import {
  retryDelay,
  startSubscription,
  type BusErrorContext,
  type DeliverySource,
  type InboundDelivery,
} from '../../../src/platform/bus/dispatcher.ts';
import { DEAD_LETTER_HEADERS } from '../../../src/platform/bus/port.ts';
import type { Handler, OutgoingMessage, Subscription } from '../../../src/platform/bus/port.ts';
import { resolveSubscribeOptions } from '../../../src/platform/bus/subscribe-options.ts';
import { createPostgresDatabase } from '../../../src/platform/db/index.ts';

/**
 * The shared dispatcher against a scripted source: the parts of the policy the conformance
 * suite cannot provoke through a real broker (failing acks and dead-letter publishes, pull
 * failures, exactly how much is pulled).
 */

interface FakeDelivery extends InboundDelivery {
  acks: number;
  extends: number;
}

const fakeDelivery = (
  id: string,
  extra: Partial<Pick<InboundDelivery, 'key' | 'deliveryCount'>> = {},
  ack?: () => Promise<void>,
): FakeDelivery => {
  const delivery: FakeDelivery = {
    subject: 'orders.created',
    data: { id },
    id,
    key: extra.key,
    headers: { traceparent: 't' },
    deliveryCount: extra.deliveryCount ?? 1,
    acks: 0,
    extends: 0,
    ack: async () => {
      await ack?.();
      delivery.acks += 1;
    },
    extend: async () => {
      delivery.extends += 1;
    },
  };
  return delivery;
};

/** Hands out queued deliveries; records each pull's `max`; a pull may be told to fail. */
const scriptedSource = (queue: InboundDelivery[], failPulls = 0) => {
  const maxima: number[] = [];
  let failures = failPulls;
  const source: DeliverySource = {
    async pull(max, signal, accept) {
      maxima.push(max);
      if (failures > 0) {
        failures -= 1;
        throw new Error('broker unreachable');
      }
      const batch = queue.splice(0, max);
      if (batch.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return;
      }
      if (!signal.aborted) batch.forEach(accept);
    },
  };
  return { source, maxima };
};

const subscriptions: Subscription[] = [];
afterEach(async () => {
  await Promise.all(subscriptions.splice(0).map((subscription) => subscription.stop()));
});

const start = (
  source: DeliverySource,
  handler: Handler,
  overrides: { maxDeliver?: number; concurrency?: number; ackWaitMs?: number; retainMs?: number } = {},
  publish: (message: OutgoingMessage) => Promise<void> = async () => undefined,
) => {
  const errors: [unknown, BusErrorContext][] = [];
  const subscription = startSubscription({
    options: resolveSubscribeOptions({ consumer: 'c1', subject: 'orders.*', retryDelayMs: 1, ackWaitMs: 1_000, ...overrides }),
    handler,
    source,
    publish,
    clock: createSystemClock(),
    onError: (error, context) => errors.push([error, context]),
  });
  subscriptions.push(subscription);
  return { subscription, errors };
};

describe('retryDelay', () => {
  it('doubles per attempt and stays within ±20% jitter', () => {
    for (const [attempt, base] of [
      [1, 100],
      [2, 200],
      [3, 400],
      [4, 800],
    ] as const) {
      const delay = retryDelay(100, attempt);
      expect(delay).toBeGreaterThanOrEqual(base * 0.8);
      expect(delay).toBeLessThanOrEqual(base * 1.2);
    }
  });

  it('caps at 30 s, or at the configured delay when that is larger', () => {
    expect(retryDelay(1_000, 20)).toBeLessThanOrEqual(36_000);
    expect(retryDelay(1_000, 20)).toBeGreaterThanOrEqual(24_000);
    expect(retryDelay(60_000, 5)).toBeLessThanOrEqual(72_000);
  });

  it('caps at maxRetryDelayMs when given, however many attempts failed', () => {
    expect(retryDelay(100, 5_000, 500)).toBeLessThanOrEqual(600);
    expect(retryDelay(100, 5_000, 500)).toBeGreaterThanOrEqual(400);
  });
});

describe('startSubscription', () => {
  it('never pulls more than its free capacity', async () => {
    const queue = Array.from({ length: 10 }, (_, index) => fakeDelivery(`m${index}`));
    const { source, maxima } = scriptedSource(queue);
    let running = 0;
    let most = 0;
    const handled: string[] = [];
    start(
      source,
      async (delivery) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running -= 1;
        handled.push(delivery.id);
      },
      { concurrency: 3 },
    );
    await vi.waitFor(() => expect(handled).toHaveLength(10), { timeout: 3_000 });
    expect(most).toBe(3);
    expect(Math.max(...maxima)).toBe(3);
    expect(Math.min(...maxima)).toBeGreaterThan(0);
  });

  it('dead-letters at once a message whose broker delivery count is past maxDeliver', async () => {
    const delivery = fakeDelivery('m1', { deliveryCount: 4 });
    const published: OutgoingMessage[] = [];
    const handler = vi.fn<Handler>(async () => undefined);
    start(scriptedSource([delivery]).source, handler, { maxDeliver: 3 }, async (message) => {
      published.push(message);
    });
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 2_000 });
    expect(handler).not.toHaveBeenCalled();
    expect(published).toEqual([
      expect.objectContaining({
        subject: 'dlq.c1.orders.created',
        id: 'dlq:c1:m1',
        headers: expect.objectContaining({
          traceparent: 't',
          [DEAD_LETTER_HEADERS.attempts]: '3',
          [DEAD_LETTER_HEADERS.reason]: 'not settled after 3 deliveries',
        }),
      }),
    ]);
  });

  it('counts attempts from the broker delivery count', async () => {
    const delivery = fakeDelivery('m1', { deliveryCount: 2 });
    const attempts: number[] = [];
    start(
      scriptedSource([delivery]).source,
      async (d) => {
        attempts.push(d.attempt);
        if (d.attempt < 4) throw new Error('again');
      },
      { maxDeliver: 5 },
    );
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 2_000 });
    expect(attempts).toEqual([2, 3, 4]);
  });

  /** What a handler gets from a database nobody listens for: a real refused connection. */
  const unreachableDatabaseError = async (): Promise<unknown> => {
    const db = await createPostgresDatabase({ url: 'postgres://blocks@127.0.0.1:1/none', connectionTimeoutMs: 1_000 });
    try {
      return await db.query('SELECT 1').then(
        () => expect.unreachable('port 1 answered'),
        (error: unknown) => error,
      );
    } finally {
      await db.close();
    }
  };

  it('retries a delivery failing on an unreachable database past maxDeliver, dead-lettering nothing, and acks it once the database answers', async () => {
    const outage = await unreachableDatabaseError();
    const delivery = fakeDelivery('m1');
    const published: OutgoingMessage[] = [];
    const attempts: number[] = [];
    start(
      scriptedSource([delivery]).source,
      async (d) => {
        attempts.push(d.attempt);
        if (d.attempt < 8) throw outage;
      },
      { maxDeliver: 3 },
      async (message) => {
        published.push(message);
      },
    );
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 3_000 });
    expect(attempts).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(published).toEqual([]);
  });

  it('still dead-letters a poison message after maxDeliver failures of its own, outage retries not counting', async () => {
    const outage = await unreachableDatabaseError();
    const delivery = fakeDelivery('m1');
    const published: OutgoingMessage[] = [];
    const attempts: number[] = [];
    start(
      scriptedSource([delivery]).source,
      async (d) => {
        attempts.push(d.attempt);
        // Outage, poison, outage, poison, outage, poison: the third poison failure is the last.
        throw d.attempt % 2 === 1 ? outage : new Error('event m1 has no tenant');
      },
      { maxDeliver: 3 },
      async (message) => {
        published.push(message);
      },
    );
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 3_000 });
    expect(attempts).toEqual([1, 2, 3, 4, 5, 6]);
    expect(published).toEqual([
      expect.objectContaining({ headers: expect.objectContaining({ [DEAD_LETTER_HEADERS.reason]: 'Error: event m1 has no tenant' }) }),
    ]);
  });

  it('counts outage failures again once the delivery has outlived retainMs', async () => {
    const outage = await unreachableDatabaseError();
    const delivery = fakeDelivery('m1');
    const published: OutgoingMessage[] = [];
    start(
      scriptedSource([delivery]).source,
      async () => {
        throw outage;
      },
      { maxDeliver: 2, retainMs: 100 },
      async (message) => {
        published.push(message);
      },
    );
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 3_000 });
    expect(published).toHaveLength(1);
    expect(published[0]?.headers?.[DEAD_LETTER_HEADERS.reason]).toMatch(/ECONNREFUSED|connect/);
  });

  it("counts a delivery's retention from when the broker stored it", async () => {
    const outage = await unreachableDatabaseError();
    const delivery = { ...fakeDelivery('m1'), publishedAt: Date.now() - 60_000 };
    const published: OutgoingMessage[] = [];
    const attempts: number[] = [];
    start(
      scriptedSource([delivery]).source,
      async (d) => {
        attempts.push(d.attempt);
        throw outage;
      },
      { maxDeliver: 2, retainMs: 30_000 },
      async (message) => {
        published.push(message);
      },
    );
    // Stored a minute ago and kept for 30 s: past its retention, so the outage counts at once.
    await vi.waitFor(() => expect(published).toHaveLength(1), { timeout: 3_000 });
    expect(attempts).toEqual([1, 2]);
  });

  it('leaves a message unsettled and reports it when the dead letter cannot be published', async () => {
    const delivery = fakeDelivery('m1');
    const { errors } = start(
      scriptedSource([delivery]).source,
      async () => {
        throw new Error('poison');
      },
      { maxDeliver: 2 },
      async () => {
        throw new Error('dlq publish failed');
      },
    );
    await vi.waitFor(() => expect(errors.map(([, context]) => context.stage)).toContain('dead-letter'), { timeout: 2_000 });
    expect(errors.map(([, context]) => [context.stage, context.attempt])).toEqual([
      ['handler', 1],
      ['handler', 2],
      ['dead-letter', 2],
    ]);
    expect(delivery.acks).toBe(0);
  });

  it('reports a failed ack without retrying the handler', async () => {
    const delivery = fakeDelivery('m1', {}, async () => {
      throw new Error('connection lost');
    });
    const handler = vi.fn<Handler>(async () => undefined);
    const { errors } = start(scriptedSource([delivery]).source, handler);
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 2_000 });
    expect(errors[0]?.[1]).toMatchObject({ stage: 'ack', id: 'm1', attempt: 1 });
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it('keeps pulling after the source fails, reporting each failure', async () => {
    const delivery = fakeDelivery('m1');
    const { errors } = start(scriptedSource([delivery], 2).source, async () => undefined);
    await vi.waitFor(() => expect(delivery.acks).toBe(1), { timeout: 3_000 });
    expect(errors.map(([, context]) => context.stage)).toEqual(['pull', 'pull']);
  });

  it('renews every held delivery, including those queued behind their key, until it settles', async () => {
    const first = fakeDelivery('m1', { key: 'k' });
    const second = fakeDelivery('m2', { key: 'k' });
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    start(scriptedSource([first, second]).source, async () => gate, { ackWaitMs: 150 });
    await vi.waitFor(() => expect(second.extends).toBeGreaterThanOrEqual(2), { timeout: 2_000 });
    expect(first.extends).toBeGreaterThanOrEqual(2);
    release();
    await vi.waitFor(() => expect(second.acks).toBe(1), { timeout: 2_000 });
    const settled = second.extends;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(second.extends).toBe(settled);
  });

  it('signs of life through the source every renewal tick, reports failures, and stops with the subscription', async () => {
    let beats = 0;
    let failNext = true;
    let closedAfter: number | undefined;
    const { source } = scriptedSource([]);
    const { subscription, errors } = start(
      {
        ...source,
        keepAlive: async () => {
          beats += 1;
          if (failNext) {
            failNext = false;
            throw new Error('broker unreachable');
          }
        },
        close: async () => {
          closedAfter = beats;
        },
      },
      async () => undefined,
      { ackWaitMs: 100 },
    );
    await vi.waitFor(() => expect(beats).toBeGreaterThanOrEqual(3), { timeout: 2_000 });
    expect(errors.map(([, context]) => context.stage)).toEqual(['keep-alive']);
    await subscription.stop();
    expect(closedAfter).toBe(beats);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(beats).toBe(closedAfter);
  });

  it('neither acks nor retries deliveries still in flight when stopped', async () => {
    const running = fakeDelivery('m1');
    const failing = fakeDelivery('m2');
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls: string[] = [];
    const { subscription } = start(scriptedSource([running, failing]).source, async (delivery) => {
      calls.push(delivery.id);
      await gate;
      if (delivery.id === 'm2') throw new Error('fails after stop');
    });
    await vi.waitFor(() => expect(calls).toHaveLength(2), { timeout: 2_000 });
    await subscription.stop();
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(running.acks + failing.acks).toBe(0);
    expect(calls).toEqual(['m1', 'm2']);
  });
});
