import { createSystemClock, type Clock } from '../clock.ts';
import { createOneAtATime } from '../one-at-a-time.ts';
import type { Database } from '../db/port.ts';
import { busError, ephemeralConflict } from './errors.ts';
import { startSubscription, type BusErrorListener, type InboundDelivery } from './dispatcher.ts';
import { createBusLifecycle } from './lifecycle.ts';
import { createDatabaseBusStore, type MemoryBusStore } from './memory-store.ts';
import { decodePayload, prepareMessage, type PreparedMessage } from './message.ts';
import type { EventBus } from './port.ts';
import { assertConsumerName } from './subject-pattern.ts';
import { resolveSubscribeOptions, type ResolvedSubscribeOptions } from './subscribe-options.ts';

/**
 * The in-process event bus: the embedded default, with the same delivery semantics as the
 * brokers (durable named consumers, shared work, ack wait, retry, dead letters, ephemeral
 * consumers dropped when their subscriber stops).
 *
 * Guarantees when given a database (`db`, as the platform does on the embedded default):
 * - `publish` resolves only once the message is stored in the database for every durable consumer
 *   it is for (one `bus_messages` row and one `bus_pending` row per consumer, in one statement), so a
 *   process killed at any moment loses no published message: on the next start every message a
 *   durable consumer had not acked is delivered to it again, at least once. Acks delete the pending
 *   row a few milliseconds later, in batches; an ack lost to a kill means one more delivery, which
 *   the consumer's inbox absorbs.
 * - Memory is bounded: each durable consumer holds at most `windowSize` messages waiting in memory
 *   (plus the deliveries its subscribers hold); the rest waits in the database and is read in
 *   order as the window empties. A backlog grows the tables, not the heap.
 * - Durable consumers are recorded when first subscribed, so messages published after a restart
 *   and before their subscriber runs again are kept for them, as on the brokers.
 * - Deliveries are counted in the database (in batches, with the acks), so a message whose handling
 *   kills the process is dead-lettered after `maxDeliver` deliveries across restarts, as a broker
 *   counts redeliveries; and with `maxAgeMs`, messages are kept no longer than that, acked or not.
 * Ephemeral consumers, and every consumer of a bus without `db`, live in memory only: they do not
 * survive the process, and their queues are not bounded.
 */
export interface MemoryBusOptions {
  readonly clock?: Clock;
  /** A message id seen within this window is stored once. Default 120 000 (as JetStream's default). */
  readonly dedupWindowMs?: number;
  readonly onError?: BusErrorListener;
  /** Keeps durable consumers' messages in this database (src/platform/migrations/0010_bus_messages.sql) instead of memory alone. */
  readonly db?: Database;
  /** Messages of one durable consumer waiting in memory at most, when stored in `db`. Default 1 000. */
  readonly windowSize?: number;
  /** Longest an ack waits before its row is deleted with others. Default 20. */
  readonly ackFlushMs?: number;
  /**
   * With `db`: messages stored longer ago than this are dropped, acked or not, as a broker's
   * max age drops them, so a durable consumer that is never subscribed again does not keep its
   * backlog for ever. 0 (the default) keeps them until acked.
   */
  readonly maxAgeMs?: number;
}

interface StoredMessage extends PreparedMessage {
  /** Its sequence in the database; 0 when it is in memory only. */
  readonly seq: number;
  /** Publish order in this process: a redelivery goes back to its place by it. */
  readonly order: number;
  /** When it was stored (ms since the epoch): a delivery's retention counts from here. */
  readonly publishedAt: number;
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
  readonly name: string;
  readonly subject: string;
  readonly ephemeral: boolean;
  /** Its messages are kept in the database; `ready` is a window onto them. */
  readonly stored: boolean;
  readonly matches: (subject: string) => boolean;
  /** Not handed out, in publish order (redeliveries go back to their place). */
  readonly ready: Entry[];
  readonly leased: Map<Entry, Lease>;
  readonly waiters: Set<() => void>;
  /** Stored only: messages not acked, in memory or not. */
  pending: number;
  /** Stored only: every message up to this sequence has been in memory (or was acked before). */
  loadedThrough: number;
  /** Stored only: messages above `loadedThrough` may wait in the database. */
  spilled: boolean;
}

const insertInOrder = (ready: Entry[], entry: Entry): void => {
  let index = ready.length;
  while (index > 0 && (ready[index - 1]?.message.order ?? 0) > entry.message.order) index -= 1;
  ready.splice(index, 0, entry);
};

/** Acks gathered before their rows are deleted in one statement. */
const ACK_BATCH = 500;
/** How often messages acked by every consumer are removed from the database. */
const PRUNE_INTERVAL_MS = 5_000;

/**
 * Creates an in-process bus. A consumer receives the messages published after it was first
 * subscribed; messages published while it has no live subscriber wait for the next one.
 * `onError` hears about handler failures it retries and dead letters it could not publish.
 */
export function createMemoryBus(options: MemoryBusOptions = {}): EventBus {
  const clock = options.clock ?? createSystemClock();
  const dedupWindowMs = options.dedupWindowMs ?? 120_000;
  const onError = options.onError ?? (() => undefined);
  const windowSize = options.windowSize ?? 1_000;
  const ackFlushMs = options.ackFlushMs ?? 20;
  const maxAgeMs = options.maxAgeMs ?? 0;
  const store: MemoryBusStore | undefined = options.db === undefined ? undefined : createDatabaseBusStore(options.db);
  const lifecycle = createBusLifecycle('memory');
  const consumers = new Map<string, ConsumerState>();
  /** id → when it may be stored again; insertion order is expiry order because the window is fixed. */
  const recentIds = new Map<string, number>();
  /** Local publish order. */
  let order = 0;
  /** Highest sequence stored in the database. */
  let storedSeq = 0;
  let tokens = 0;

  // Publishing, creating a consumer and reading a window happen one at a time, so a window read
  // never misses a message stored while it ran.
  const serial = createOneAtATime();

  const newState = (name: string, subject: string, ephemeral: boolean, matches: (subject: string) => boolean): ConsumerState => ({
    name,
    subject,
    ephemeral,
    stored: store !== undefined && !ephemeral,
    matches,
    ready: [],
    leased: new Map(),
    waiters: new Set(),
    pending: 0,
    loadedThrough: 0,
    spilled: true,
  });

  const opened: Promise<void> =
    store === undefined
      ? Promise.resolve()
      : // Expired messages go first, so a consumer's backlog is counted without them.
        store
          .prune(maxAgeMs)
          .then(() => store.open())
          .then(({ consumers: stored, lastSeq }) => {
            storedSeq = lastSeq;
            for (const { consumer, subject, pending } of stored) {
              const { matches } = resolveSubscribeOptions({ consumer, subject });
              const state = newState(consumer, subject, false, matches);
              state.pending = pending;
              consumers.set(consumer, state);
            }
          });
  // Awaited by every operation; this only keeps a failed open from being an unhandled rejection.
  opened.catch(() => undefined);

  const notify = (state: ConsumerState): void => {
    for (const wake of [...state.waiters]) wake();
  };

  const isDuplicate = (id: string): boolean => {
    const now = clock.now();
    for (const [seen, expiresAt] of recentIds) {
      if (expiresAt > now) break;
      recentIds.delete(seen);
    }
    return recentIds.has(id);
  };
  const remember = (id: string): void => {
    if (dedupWindowMs > 0) recentIds.set(id, clock.now() + dedupWindowMs);
  };

  // Deliveries and acks of stored messages: written in batches, a little later. A delivery count
  // lost to a crash is one delivery fewer counted; an ack lost to a crash is a redelivery.
  let delivered: { consumers: string[]; seqs: number[] } = { consumers: [], seqs: [] };
  let acked: { consumers: string[]; seqs: number[] } = { consumers: [], seqs: [] };
  let ackTimer: AbortController | undefined;
  let ackFlushing: Promise<void> = Promise.resolve();
  let lastPrune = clock.now();
  const flushAcks = (): Promise<void> => {
    ackTimer?.abort();
    ackTimer = undefined;
    const deliveries = delivered;
    const batch = acked;
    delivered = { consumers: [], seqs: [] };
    acked = { consumers: [], seqs: [] };
    ackFlushing = ackFlushing.then(async () => {
      if (store === undefined) return;
      try {
        // Counted before the acks, so a row delivered and acked in one batch is simply gone.
        await store.delivered(deliveries.consumers, deliveries.seqs);
        await store.ack(batch.consumers, batch.seqs);
        if (clock.now() - lastPrune >= PRUNE_INTERVAL_MS) {
          lastPrune = clock.now();
          const expired = await store.prune(maxAgeMs);
          for (const [name, count] of expired) {
            const state = consumers.get(name);
            if (state !== undefined) state.pending = Math.max(0, state.pending - count);
            onError(new Error(`${count} messages older than ${maxAgeMs} ms dropped unacked`), { stage: 'maintenance', consumer: name });
          }
        }
      } catch (error) {
        // Still pending in the database: delivered again after a restart, which the inbox absorbs.
        onError(error instanceof Error ? error : new Error(String(error)), {
          stage: 'ack',
          consumer: batch.consumers[0] ?? deliveries.consumers[0] ?? '',
        });
      }
    });
    return ackFlushing;
  };
  // Set once close has taken the last batch: a handler settling later must not write to a database that may be closed
  // by then; its message stays pending and is delivered again after the next start.
  let flushedForClose = false;
  const scheduleFlush = (): void => {
    if (flushedForClose) return;
    if (acked.seqs.length + delivered.seqs.length >= ACK_BATCH) {
      void flushAcks();
    } else if (ackTimer === undefined) {
      const timer = new AbortController();
      ackTimer = timer;
      clock.sleep(ackFlushMs, timer.signal).then(
        () => {
          if (ackTimer === timer) void flushAcks();
        },
        () => undefined,
      );
    }
  };
  const recordAck = (state: ConsumerState, entry: Entry): void => {
    state.pending -= 1;
    acked.consumers.push(state.name);
    acked.seqs.push(entry.message.seq);
    scheduleFlush();
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
    if (state.stored) {
      delivered.consumers.push(state.name);
      delivered.seqs.push(entry.message.seq);
      scheduleFlush();
    }
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
      publishedAt: message.publishedAt,
      ack: async () => {
        // A late ack from a subscriber whose lease ran out is ignored: the message is someone else's now.
        if (!owns()) return;
        current.timer.abort();
        state.leased.delete(entry);
        if (state.stored) recordAck(state, entry);
      },
      extend: async () => {
        if (!owns()) return;
        current.timer.abort();
        startLease(state, entry, current);
      },
    };
  };

  /** Hands a freshly published message to a consumer's memory, or leaves it in the database when the window is full. */
  const enqueue = (state: ConsumerState, message: StoredMessage): void => {
    if (state.stored) {
      state.pending += 1;
      if (state.spilled || state.ready.length >= windowSize) {
        state.spilled = true;
        return;
      }
      state.loadedThrough = message.seq;
    }
    state.ready.push({ message, deliveryCount: 0 });
    notify(state);
  };

  /** Reads the next messages of a stored consumer's backlog into its window. */
  const refill = (state: ConsumerState): Promise<void> =>
    serial(async () => {
      if (store === undefined || !state.spilled) return;
      const room = windowSize - state.ready.length;
      if (room <= 0) return;
      const rows = await store.load(state.name, state.loadedThrough, room);
      for (const message of rows) {
        if (message.seq <= state.loadedThrough) continue;
        // Deliveries before a restart count, so a message that kills the process is dead-lettered in the end.
        state.ready.push({ message: { ...message, order: (order += 1) }, deliveryCount: message.deliveries });
        state.loadedThrough = message.seq;
      }
      // Nothing stored since is missing: publishes wait for this read (serial) and fill the window themselves.
      if (rows.length < room) state.spilled = false;
    });

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
    const created = newState(resolved.consumer, resolved.subject, resolved.ephemeral, resolved.matches);
    // A new consumer has nothing before now, in memory or stored.
    created.loadedThrough = storedSeq;
    created.spilled = false;
    consumers.set(resolved.consumer, created);
    return created;
  };

  /** Creates (and for a stored one, records) the consumer, one at a time with publishes. */
  const ensureConsumer = (resolved: ResolvedSubscribeOptions): Promise<ConsumerState> =>
    serial(async () => {
      const known = consumers.has(resolved.consumer);
      const state = consumerFor(resolved);
      if (!known && state.stored && store !== undefined) {
        try {
          await store.addConsumer(state.name, state.subject);
        } catch (error) {
          consumers.delete(state.name);
          throw error;
        }
      }
      return state;
    });

  /** Drops an ephemeral consumer with its pending messages; subscribers still waiting on it wake up and recreate it. */
  const removeConsumer = (name: string, state: ConsumerState): void => {
    if (consumers.get(name) !== state) return;
    consumers.delete(name);
    for (const current of state.leased.values()) current.timer.abort();
    state.leased.clear();
    state.ready.length = 0;
    notify(state);
  };

  /** Stores messages (one statement for those durable consumers need) and hands them to the consumers' memory. Runs in `serial`. */
  const store_ = async (prepared: readonly PreparedMessage[]): Promise<void> => {
    const fresh = new Map<string, PreparedMessage>();
    for (const message of prepared) if (!isDuplicate(message.id) && !fresh.has(message.id)) fresh.set(message.id, message);
    const batch = [...fresh.values()].map((message) => {
      const targets = [...consumers.values()].filter((state) => state.matches(message.subject));
      return { message, targets, storedFor: targets.filter((state) => state.stored).map((state) => state.name) };
    });
    // Stored first: a message counts as published only once it survives the process.
    const toStore = batch.filter((each) => each.storedFor.length > 0);
    const seqs = store === undefined || toStore.length === 0 ? new Map<string, number>() : await store.insert(toStore);
    for (const { message, targets } of batch) {
      const seq = seqs.get(message.id) ?? 0;
      storedSeq = Math.max(storedSeq, seq);
      remember(message.id);
      const stored: StoredMessage = { ...message, seq, order: (order += 1), publishedAt: clock.now() };
      for (const state of targets) enqueue(state, stored);
    }
  };

  const bus: EventBus = {
    kind: 'memory',
    async publish(outgoing) {
      lifecycle.assertOpen();
      const prepared = prepareMessage(outgoing);
      await opened;
      await serial(() => store_([prepared]));
    },
    async publishBatch(outgoing) {
      lifecycle.assertOpen();
      const prepared = outgoing.map(prepareMessage);
      await opened;
      await serial(() => store_(prepared));
    },
    async subscribe(subscribeOptions, handler) {
      lifecycle.assertOpen();
      const resolved = resolveSubscribeOptions(subscribeOptions);
      await opened;
      let state = await ensureConsumer(resolved);
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
              if (state.spilled && state.ready.length < windowSize / 2) await refill(state);
              const batch = state.ready.splice(0, max);
              if (batch.length > 0) {
                for (const entry of batch) accept(lease(state, entry, resolved.ackWaitMs));
                return;
              }
              if (state.spilled) continue;
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
      await opened;
      const state = consumers.get(consumer);
      if (state === undefined) return 0;
      return state.stored ? state.pending : state.ready.length + state.leased.size;
    },
    async ping() {
      lifecycle.assertOpen();
      // Backed by a database, the bus is only as reachable as the database its messages go to.
      return options.db === undefined ? 0 : options.db.ping();
    },
    close: () =>
      lifecycle.close(async () => {
        for (const state of consumers.values()) {
          for (const current of state.leased.values()) current.timer.abort();
          notify(state);
        }
        const last = flushAcks();
        flushedForClose = true;
        await last;
      }),
  };
  return bus;
}
