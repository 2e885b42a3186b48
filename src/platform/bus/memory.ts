import { createSystemClock, type Clock } from '../clock.ts';
import { busError, ephemeralConflict } from './errors.ts';
import { startSubscription, type BusErrorListener, type InboundDelivery } from './dispatcher.ts';
import { createBusLifecycle } from './lifecycle.ts';
import { decodePayload, prepareMessage, type PreparedMessage } from './message.ts';
import type { EventBus } from './port.ts';
import { assertConsumerName } from './subject-pattern.ts';
import { resolveSubscribeOptions, type ResolvedSubscribeOptions } from './subscribe-options.ts';

/**
 * The in-process event bus: the embedded default, with the same delivery semantics as the
 * brokers (durable named consumers, shared work, ack wait, retry, dead letters, ephemeral
 * consumers dropped when their subscriber stops) for as long as the process lives. Messages do
 * not survive the process.
 */
export interface MemoryBusOptions {
  readonly clock?: Clock;
  /** A message id seen within this window is stored once. Default 120 000 (as JetStream's default). */
  readonly dedupWindowMs?: number;
  readonly onError?: BusErrorListener;
}

interface StoredMessage extends PreparedMessage {
  readonly seq: number;
}

/** One message as one consumer sees it. */
interface Entry {
  readonly message: StoredMessage;
  deliveryCount: number;
}

interface Lease {
  readonly token: number;
  readonly ackWaitMs: number;
  timer: AbortController;
}

interface ConsumerState {
  readonly subject: string;
  readonly ephemeral: boolean;
  readonly matches: (subject: string) => boolean;
  /** Not handed out, in publish order (redeliveries go back to their place). */
  readonly ready: Entry[];
  readonly leased: Map<Entry, Lease>;
  readonly waiters: Set<() => void>;
}

const insertInOrder = (ready: Entry[], entry: Entry): void => {
  let index = ready.length;
  while (index > 0 && (ready[index - 1]?.message.seq ?? 0) > entry.message.seq) index -= 1;
  ready.splice(index, 0, entry);
};

/**
 * Creates an in-process bus. A consumer receives the messages published after it was first
 * subscribed; messages published while it has no live subscriber wait for the next one.
 * `onError` hears about handler failures it retries and dead letters it could not publish.
 */
export function createMemoryBus(options: MemoryBusOptions = {}): EventBus {
  const clock = options.clock ?? createSystemClock();
  const dedupWindowMs = options.dedupWindowMs ?? 120_000;
  const onError = options.onError ?? (() => undefined);
  const lifecycle = createBusLifecycle('memory');
  const consumers = new Map<string, ConsumerState>();
  /** id → when it may be stored again; insertion order is expiry order because the window is fixed. */
  const recentIds = new Map<string, number>();
  let seq = 0;
  let tokens = 0;

  const notify = (state: ConsumerState): void => {
    for (const wake of [...state.waiters]) wake();
  };

  const isDuplicate = (id: string): boolean => {
    const now = clock.now();
    for (const [seen, expiresAt] of recentIds) {
      if (expiresAt > now) break;
      recentIds.delete(seen);
    }
    if (recentIds.has(id)) return true;
    if (dedupWindowMs > 0) recentIds.set(id, now + dedupWindowMs);
    return false;
  };

  const startLease = (state: ConsumerState, entry: Entry, lease: Lease): void => {
    lease.timer = new AbortController();
    clock.sleep(lease.ackWaitMs, lease.timer.signal).then(
      () => {
        if (state.leased.get(entry) !== lease) return;
        state.leased.delete(entry);
        insertInOrder(state.ready, entry);
        notify(state);
      },
      () => undefined, // aborted: the lease was settled or renewed
    );
  };

  const lease = (state: ConsumerState, entry: Entry, ackWaitMs: number): InboundDelivery => {
    entry.deliveryCount += 1;
    const current: Lease = { token: (tokens += 1), ackWaitMs, timer: new AbortController() };
    state.leased.set(entry, current);
    startLease(state, entry, current);
    const { message } = entry;
    const owns = (): boolean => state.leased.get(entry) === current;
    return {
      subject: message.subject,
      data: decodePayload(message.payload),
      id: message.id,
      key: message.key,
      headers: { ...message.headers },
      deliveryCount: entry.deliveryCount,
      ack: async () => {
        // A late ack from a subscriber whose lease ran out is ignored: the message is someone else's now.
        if (!owns()) return;
        current.timer.abort();
        state.leased.delete(entry);
      },
      extend: async () => {
        if (!owns()) return;
        current.timer.abort();
        startLease(state, entry, current);
      },
    };
  };

  const waitForMessages = (state: ConsumerState, signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      const wake = (): void => {
        state.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      state.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });

  const consumerFor = (resolved: ResolvedSubscribeOptions): ConsumerState => {
    const existing = consumers.get(resolved.consumer);
    if (existing !== undefined) {
      if (existing.subject !== resolved.subject) {
        throw busError(
          'BUS_CONSUMER_CONFLICT',
          `Consumer '${resolved.consumer}' receives '${existing.subject}', not '${resolved.subject}'; use another consumer name.`,
          { consumer: resolved.consumer, subject: resolved.subject, existing_subject: existing.subject },
        );
      }
      if (existing.ephemeral !== resolved.ephemeral) throw ephemeralConflict(resolved.consumer, existing.ephemeral);
      return existing;
    }
    const created: ConsumerState = {
      subject: resolved.subject,
      ephemeral: resolved.ephemeral,
      matches: resolved.matches,
      ready: [],
      leased: new Map(),
      waiters: new Set(),
    };
    consumers.set(resolved.consumer, created);
    return created;
  };

  /** Drops an ephemeral consumer with its pending messages; subscribers still waiting on it wake up and recreate it. */
  const removeConsumer = (name: string, state: ConsumerState): void => {
    if (consumers.get(name) !== state) return;
    consumers.delete(name);
    for (const current of state.leased.values()) current.timer.abort();
    state.leased.clear();
    state.ready.length = 0;
    notify(state);
  };

  const bus: EventBus = {
    kind: 'memory',
    async publish(outgoing) {
      lifecycle.assertOpen();
      const prepared = prepareMessage(outgoing);
      if (isDuplicate(prepared.id)) return;
      const message: StoredMessage = { ...prepared, seq: (seq += 1) };
      for (const state of consumers.values()) {
        if (!state.matches(message.subject)) continue;
        state.ready.push({ message, deliveryCount: 0 });
        notify(state);
      }
    },
    async subscribe(subscribeOptions, handler) {
      lifecycle.assertOpen();
      const resolved = resolveSubscribeOptions(subscribeOptions);
      let state = consumerFor(resolved);
      const subscription = startSubscription({
        options: resolved,
        handler,
        clock,
        onError,
        publish: (message) => bus.publish(message),
        source: {
          async pull(max, signal, accept) {
            while (!signal.aborted) {
              // An ephemeral consumer removed under us (its other subscriber stopped) starts afresh.
              if (consumers.get(resolved.consumer) !== state) state = consumerFor(resolved);
              const batch = state.ready.splice(0, max);
              if (batch.length > 0) {
                for (const entry of batch) accept(lease(state, entry, resolved.ackWaitMs));
                return;
              }
              await waitForMessages(state, signal);
            }
          },
          async close() {
            if (resolved.ephemeral) removeConsumer(resolved.consumer, state);
          },
        },
      });
      return lifecycle.track(subscription);
    },
    async lag(consumer) {
      assertConsumerName(consumer);
      const state = consumers.get(consumer);
      return state === undefined ? 0 : state.ready.length + state.leased.size;
    },
    async ping() {
      lifecycle.assertOpen();
      return 0;
    },
    close: () =>
      lifecycle.close(async () => {
        for (const state of consumers.values()) {
          for (const current of state.leased.values()) current.timer.abort();
          notify(state);
        }
      }),
  };
  return bus;
}
