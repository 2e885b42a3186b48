import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNatsBus } from '../../../src/platform/bus/nats.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createRedisBus } from '../../../src/platform/bus/redis.ts';
import { probeService } from '../../support/services.ts';
import {
  deleteNatsStream,
  deleteRedisNamespace,
  natsConsumerExists,
  natsTestOptions,
  redisConsumerExists,
  redisTestOptions,
} from '../../conformance/bus.fixtures.ts';

/**
 * A subscriber process is SIGKILLed in the middle of a handler; the message must reach a
 * subscriber in another process once its ack wait runs out, and not before (the dying
 * process renewed it while alive). An ephemeral consumer held by a killed process must be
 * removed by the broker after its inactivity bound, and not while the process lives. The
 * in-process bus is not here: it has no other process to hand a delivery to. What it keeps across
 * a kill (on PGlite) is the conformance suite's kill case, which restarts the killed process.
 */

const script = fileURLToPath(new URL('./fixtures/crash-subscriber.ts', import.meta.url));

const [nats, redis] = await Promise.all([probeService('nats'), probeService('redis')]);

interface Namespace {
  readonly options: object;
  readonly open: () => Promise<EventBus>;
  readonly remove: () => Promise<void>;
  readonly consumerExists: (consumer: string) => Promise<boolean>;
}

/**
 * For the ephemeral case: a short inactivity bound (the adapters raise it to two ack waits), and
 * on Redis housekeeping often enough that the parent's bus notices the dead group soon after.
 */
const EPHEMERAL_TIMEOUT_MS = 1_000;

const adapters = [
  {
    kind: 'nats',
    ok: nats.ok,
    // A killed subscriber's last pull request (1 s at least) must expire before its delivery comes due.
    ackWaitMs: 2_000,
    /** What the server uses: the bound, raised to two ack waits. */
    ephemeralBoundMs: 4_000,
    namespace: (): Namespace => {
      const options = { ...natsTestOptions(nats.url), ephemeralTimeoutMs: EPHEMERAL_TIMEOUT_MS };
      return {
        options,
        open: () => createNatsBus(options),
        remove: () => deleteNatsStream(nats.url, options.stream),
        consumerExists: (consumer) => natsConsumerExists(nats.url, options.stream, consumer),
      };
    },
  },
  {
    kind: 'redis',
    ok: redis.ok,
    ackWaitMs: 1_000,
    ephemeralBoundMs: 2_000,
    namespace: (): Namespace => {
      const options = { ...redisTestOptions(redis.url), ephemeralTimeoutMs: EPHEMERAL_TIMEOUT_MS, maintenanceIntervalMs: 200 };
      return {
        options,
        open: () => createRedisBus(options),
        remove: () => deleteRedisNamespace(redis.url, options.streamKey),
        consumerExists: (consumer) => redisConsumerExists(redis.url, options.streamKey, consumer),
      };
    },
  },
] as const;

interface ChildEvent {
  readonly event: string;
  readonly id?: string;
  readonly attempt?: number;
}

/** Starts the subscriber process and returns a reader for the events it prints. */
const startChild = (config: object): { child: ChildProcess; next: (event: string) => Promise<ChildEvent> } => {
  const child = spawn(process.execPath, [script, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events: ChildEvent[] = [];
  const waiting: { event: string; resolve: (e: ChildEvent) => void }[] = [];
  if (child.stdout === null) throw new Error('the subscriber process has no stdout pipe');
  createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as ChildEvent;
    const index = waiting.findIndex((w) => w.event === parsed.event);
    if (index >= 0) waiting.splice(index, 1)[0]?.resolve(parsed);
    else events.push(parsed);
  });
  const next = (event: string): Promise<ChildEvent> => {
    const index = events.findIndex((e) => e.event === event);
    const seen = index >= 0 ? events.splice(index, 1)[0] : undefined;
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiting.push({ event, resolve });
      child.once('exit', (code, signal) => reject(new Error(`subscriber process exited (${code ?? signal}) before '${event}'`)));
    });
  };
  return { child, next };
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

for (const adapter of adapters) {
  describe.skipIf(!adapter.ok)(`${adapter.kind} event bus across processes`, () => {
    it('redelivers the message a SIGKILLed subscriber process was handling to a subscriber in another process', async () => {
      const ACK_WAIT_MS = adapter.ackWaitMs;
      const namespace = adapter.namespace();
      const bus = await namespace.open();
      cleanups.push(async () => {
        await bus.close();
        await namespace.remove();
      });
      const consumer = 'crashy';
      const { child, next } = startChild({
        kind: adapter.kind,
        options: namespace.options,
        consumer,
        subject: 'jobs.*',
        ackWaitMs: ACK_WAIT_MS,
      });
      const exited = once(child, 'exit');
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      });
      await next('subscribed');

      await bus.publish({ subject: 'jobs.render', data: { page: 3 }, id: 'job-1' });
      expect(await next('received')).toMatchObject({ id: 'job-1', attempt: 1 });

      const received: Delivery[] = [];
      await bus.subscribe({ consumer, subject: 'jobs.*', ackWaitMs: ACK_WAIT_MS }, async (delivery) => {
        received.push(delivery);
      });
      // While the child lives it renews the delivery, so it is not handed over even after two ack waits.
      await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS * 2.5));
      expect(received).toEqual([]);

      child.kill('SIGKILL');
      const [, signal] = await exited;
      expect(signal).toBe('SIGKILL');

      await vi.waitFor(() => expect(received).toHaveLength(1), { timeout: ACK_WAIT_MS * 8, interval: 20 });
      expect(received[0]).toMatchObject({ id: 'job-1', subject: 'jobs.render', data: { page: 3 }, attempt: 2 });
      await vi.waitFor(async () => expect(await bus.lag(consumer)).toBe(0), { timeout: 5_000, interval: 20 });
    }, 30_000);

    it('removes the ephemeral consumer of a SIGKILLed subscriber process after its inactivity bound, and not while it lives', async () => {
      const BOUND_MS = adapter.ephemeralBoundMs;
      const namespace = adapter.namespace();
      const bus = await namespace.open();
      cleanups.push(async () => {
        await bus.close();
        await namespace.remove();
      });
      const consumer = 'cache-node-1';
      const { child, next } = startChild({
        kind: adapter.kind,
        options: namespace.options,
        consumer,
        subject: 'cache.invalidate',
        ackWaitMs: adapter.ackWaitMs,
        ephemeral: true,
        // Busy with a handler that never ends, the child has no reason to ask the broker for more:
        // only its keep-alive shows it is alive.
        concurrency: 1,
      });
      const exited = once(child, 'exit');
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      });
      await next('subscribed');
      await bus.publish({ subject: 'cache.invalidate', data: { keys: ['a'] }, id: 'inv-1' });
      expect(await next('received')).toMatchObject({ id: 'inv-1', attempt: 1 });
      await bus.publish({ subject: 'cache.invalidate', data: { keys: ['b'] }, id: 'inv-2' });

      // Alive past its bound: still there (on Redis the parent's housekeeping runs all the while).
      await new Promise((resolve) => setTimeout(resolve, BOUND_MS * 1.5));
      expect(await namespace.consumerExists(consumer)).toBe(true);
      expect(await bus.lag(consumer)).toBe(2);

      child.kill('SIGKILL');
      const [, signal] = await exited;
      expect(signal).toBe('SIGKILL');

      await vi.waitFor(async () => expect(await namespace.consumerExists(consumer)).toBe(false), {
        timeout: BOUND_MS * 4,
        interval: 100,
      });
      await bus.publish({ subject: 'cache.invalidate', data: { keys: ['c'] }, id: 'inv-3' });
      expect(await bus.lag(consumer)).toBe(0);
    }, 40_000);
  });
}
