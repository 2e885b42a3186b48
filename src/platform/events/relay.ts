import { randomUUID } from 'node:crypto';
import type { Database } from '../db/port.ts';
import type { EventBus, OutgoingMessage } from '../bus/port.ts';
import type { Logger } from '../logger.ts';
import {
  claimPending,
  selectPending,
  countPending,
  keysWaitingForEarlierEvents,
  markPublished,
  recordFailure,
  release,
  type ClaimedEvent,
} from './outbox-store.ts';
import { EVENT_HEADERS, type SystemEvent } from './types.ts';

export interface OutboxRelayOptions {
  readonly db: Database;
  readonly bus: EventBus;
  readonly logger?: Pick<Logger, 'warn' | 'error'> | undefined;
  /** How often the outbox is scanned when nothing calls `notify()`. Default 1 000. */
  readonly pollIntervalMs?: number | undefined;
  /** Rows claimed per pass. Default 100. */
  readonly batchSize?: number | undefined;
  /**
   * How long claimed rows stay reserved for this relay. A relay that dies mid-pass holds its rows
   * this long before another relay takes them; a pass stops publishing at half of it. Default 30 000.
   */
  readonly leaseMs?: number | undefined;
  /** Longest wait between passes while the bus keeps failing. Default 30 000. */
  readonly maxBackoffMs?: number | undefined;
  /**
   * No other relay works on this database, so rows need no lease: pending rows are read, not
   * reserved. Default: true on PGlite (one process owns its data), false on PostgreSQL.
   */
  readonly exclusive?: boolean | undefined;
  /** Bus subject for an event. Default: its `event_type`. */
  readonly subjectFor?: ((event: SystemEvent) => string) | undefined;
}

/** What one `flush()` did. */
export interface RelayResult {
  readonly published: number;
  /** Publish attempts that failed; those rows stay pending with `attempts` and `last_error` recorded. */
  readonly failed: number;
}

/** Bounds on one `flush()`. */
export interface FlushOptions {
  /**
   * Stop starting publishes after this long; what is left stays pending (unleased) for the next pass,
   * another replica's relay or the next start. Used at shutdown, where a shared outbox's backlog is
   * every replica's, not this process's to clear. Default: until the outbox is empty.
   */
  readonly withinMs?: number | undefined;
}

/**
 * Publishes committed outbox events to the bus. Each event goes out with subject = `event_type`,
 * id = `event_id`, key = the event's ordering key (its `correlation_id` unless `appendEvent` was
 * given a `key`), data = the SystemEvent, and `x-correlation-id` / `traceparent` headers.
 *
 * Guarantees: an event is marked published only after the bus stored it; a failed publish leaves it
 * pending and it is retried by a later pass; events sharing a key are published in commit order, and
 * a failed one holds back the later ones of its key (not other keys). Several relays on one database
 * share the work without publishing a row twice at the same time. Delivery is at least once: a relay
 * that dies between publishing and marking, or whose publish outlives its lease, lets the event go
 * out again with the same id, which the bus's deduplication or the consumer's inbox absorbs.
 */
export interface OutboxRelay {
  /** Starts relaying in the background: a pass now, then on every `notify()` and poll. */
  start(): void;
  /**
   * Stops the background loop after the publish in progress (however large the backlog); rows it had
   * leased and not published are released, so another relay or the next start takes them at once.
   */
  stop(): Promise<void>;
  /**
   * Relays everything pending now (after any pass already running), e.g. before shutdown or in tests.
   * A failed publish is counted, not thrown; rejects only when the database fails.
   */
  flush(options?: FlushOptions): Promise<RelayResult>;
  /** Wakes the background loop now: call after committing a transaction that appended events. */
  notify(): void;
  /** Events committed and not yet published. */
  backlog(): Promise<number>;
}

/** Failed publishes in a row after which a pass stops: the bus is down, not one message bad. */
const CONSECUTIVE_FAILURES_TO_STOP = 3;
const MAX_ERROR_LENGTH = 1_000;

interface PassOutcome {
  readonly claimed: number;
  readonly published: number;
  readonly failed: number;
  readonly busDown: boolean;
}

const describeError = (error: unknown): string =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, MAX_ERROR_LENGTH);

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, bus, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const subjectFor = options.subjectFor ?? ((event: SystemEvent) => event.event_type);
  const alone = options.exclusive ?? db.kind === 'pglite';
  const relayId = randomUUID();
  let passes = 0;

  const toMessage = ({ event, key, traceparent }: ClaimedEvent): OutgoingMessage => ({
    subject: subjectFor(event),
    id: event.event_id,
    key,
    data: event,
    headers: {
      [EVENT_HEADERS.correlationId]: event.correlation_id,
      ...(traceparent === null ? {} : { [EVENT_HEADERS.traceparent]: traceparent }),
    },
  });

  /** Claims one batch, publishes what may go out now (until `halted`), and records the outcome of every row. */
  const runPass = async (halted: () => boolean): Promise<PassOutcome> => {
    const token = `${relayId}:${(passes += 1)}`;
    const claimed = alone ? await selectPending(db, batchSize) : await claimPending(db, token, batchSize, leaseMs);
    if (claimed.length === 0) return { claimed: 0, published: 0, failed: 0, busDown: false };
    // Stop well before the lease runs out, so another relay never takes rows this one is still publishing.
    const deadline = Date.now() + leaseMs / 2;
    const held = alone ? new Set<string>() : await keysWaitingForEarlierEvents(db, token, claimed);
    const published: string[] = [];
    const deferred: string[] = [];
    let failed = 0;
    let consecutiveFailures = 0;
    if (bus.publishBatch !== undefined && held.size === 0 && !halted()) {
      // One round trip for the pass (the in-process bus on PGlite): all stored, in order, or none.
      try {
        await bus.publishBatch(claimed.map(toMessage));
        await markPublished(
          db,
          claimed.map((row) => row.event.event_id),
        );
        return { claimed: claimed.length, published: claimed.length, failed: 0, busDown: false };
      } catch (error) {
        // Nothing was stored: the first row records the failure, the rest wait with it for the next pass.
        const [first] = claimed as [ClaimedEvent, ...ClaimedEvent[]];
        logger?.warn(
          { err: error, event_id: first.event.event_id, event_type: first.event.event_type },
          'outbox publish failed; will retry',
        );
        await recordFailure(db, alone ? null : token, first.event.event_id, describeError(error));
        if (!alone)
          await release(
            db,
            token,
            claimed.slice(1).map((row) => row.event.event_id),
          );
        return { claimed: claimed.length, published: 0, failed: 1, busDown: true };
      }
    }
    for (const row of claimed) {
      const stopped = consecutiveFailures >= CONSECUTIVE_FAILURES_TO_STOP || Date.now() > deadline || halted();
      if (stopped || held.has(row.key)) {
        deferred.push(row.event.event_id);
        continue;
      }
      try {
        await bus.publish(toMessage(row));
        published.push(row.event.event_id);
        consecutiveFailures = 0;
      } catch (error) {
        failed += 1;
        consecutiveFailures += 1;
        held.add(row.key);
        logger?.warn({ err: error, event_id: row.event.event_id, event_type: row.event.event_type }, 'outbox publish failed; will retry');
        await recordFailure(db, alone ? null : token, row.event.event_id, describeError(error));
      }
    }
    await markPublished(db, published);
    // Deferred rows of a relay alone on its database were never reserved: they simply stay pending.
    if (!alone) await release(db, token, deferred);
    return {
      claimed: claimed.length,
      published: published.length,
      failed,
      busDown: consecutiveFailures >= CONSECUTIVE_FAILURES_TO_STOP,
    };
  };

  /** Passes until the outbox is empty, a pass makes no progress, the bus looks down, or `halted` says so. */
  const drain = async (halted: () => boolean): Promise<PassOutcome> => {
    let total: PassOutcome = { claimed: 0, published: 0, failed: 0, busDown: false };
    for (;;) {
      if (halted()) return total;
      const pass = await runPass(halted);
      total = {
        claimed: total.claimed + pass.claimed,
        published: total.published + pass.published,
        failed: total.failed + pass.failed,
        busDown: pass.busDown,
      };
      if (pass.claimed < batchSize || pass.published === 0 || pass.busDown) return total;
    }
  };

  // One pass at a time per relay: flush() waits for the background pass instead of racing it.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work);
    // The queue only orders passes; each caller gets its own pass's outcome (or error) from `run`.
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  let running = false;
  let loop: Promise<void> | undefined;
  let notified = false;
  let backingOff = false;
  let wake: (() => void) | undefined;

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const runLoop = async (): Promise<void> => {
    let failingPasses = 0;
    while (running) {
      // One turn of the event loop first, so the commits of requests read in this turn join the pass.
      await new Promise<void>((resolve) => setImmediate(resolve));
      notified = false;
      let outcome: PassOutcome;
      try {
        outcome = await exclusive(() => drain(() => !running));
      } catch (error) {
        logger?.error({ err: error }, 'outbox relay pass failed; will retry');
        outcome = { claimed: 0, published: 0, failed: 1, busDown: true };
      }
      const failing = outcome.failed > 0 && outcome.published === 0;
      failingPasses = failing ? failingPasses + 1 : 0;
      if (!running) break;
      if (failing) {
        // While the bus or database is failing, notify() must not turn every commit into another attempt.
        backingOff = true;
        await pause(Math.min(pollIntervalMs * 2 ** (failingPasses - 1), maxBackoffMs));
        backingOff = false;
      } else if (!notified) {
        await pause(pollIntervalMs);
      }
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      loop = runLoop();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
      loop = undefined;
    },
    async flush(flushOptions = {}) {
      const { withinMs } = flushOptions;
      const until = withinMs === undefined ? Infinity : Date.now() + withinMs;
      const { published, failed } = await exclusive(() => drain(() => Date.now() >= until));
      return { published, failed };
    },
    notify() {
      notified = true;
      if (!backingOff) wake?.();
    },
    backlog: () => countPending(db),
  };
}
