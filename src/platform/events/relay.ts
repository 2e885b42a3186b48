import { randomUUID } from 'node:crypto';
import type { Database, Listening } from '../db/port.ts';
import { createSystemClock, type Clock } from '../clock.ts';
import { isDatabaseError } from '../db/errors.ts';
import { createOneAtATime } from '../one-at-a-time.ts';
import type { EventBus, OutgoingMessage } from '../bus/port.ts';
import type { Logger } from '../logger.ts';
import {
  claimPending,
  selectPending,
  countPending,
  keysWaitingForEarlierEvents,
  markPublished,
  moveToDeadLetters,
  recordFailure,
  release,
  type ClaimedEvent,
  type DeadLetteredEvent,
} from './outbox-store.ts';
import { OUTBOX_CHANNEL, appendEvent } from './outbox.ts';
import { EVENT_HEADERS, type SystemEvent } from './types.ts';

export interface OutboxRelayOptions {
  readonly db: Database;
  readonly bus: EventBus;
  readonly logger?: Pick<Logger, 'warn' | 'error'> | undefined;
  /** How often the outbox is scanned when nothing wakes the relay. Default 1 000. */
  readonly pollIntervalMs?: number | undefined;
  /**
   * Wake on the database's outbox channel, which `appendEvents` notifies when its transaction
   * commits: events any replica commits go out at once, not at the next poll. Polling stays as the
   * safety net (a notification lost while the listening connection was down). Default true.
   */
  readonly listen?: boolean | undefined;
  /** Time for leases' halfway mark, flush bounds and the waits between passes. Default: the system clock. */
  readonly clock?: Clock | undefined;
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
  /**
   * Times the bus may refuse an event while it is answering (the event is too large for the broker,
   * its subject is rejected) before the event is moved to `outbox_dead_letters`, so the later events
   * of its key go out. Failures while the bus is down never count. Default 10.
   */
  readonly maxAttempts?: number | undefined;
  /** Publishes in flight at once. Default 256. */
  readonly maxInFlight?: number | undefined;
  /** Called after an event was moved to `outbox_dead_letters` (for a metric). */
  readonly onDeadLetter?: ((event: DeadLetteredEvent) => void) | undefined;
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
 * a failed one holds back the later ones of its key (not other keys) until it is published or, refused
 * `maxAttempts` times by a bus that answers, moved to `outbox_dead_letters`. Publishes of different
 * keys are in flight together, so the relay's rate is the bus's pipelined rate, not its round trip's
 * inverse. Several relays on one database
 * share the work without publishing a row twice at the same time. Delivery is at least once: a relay
 * that dies between publishing and marking, or whose publish outlives its lease, lets the event go
 * out again with the same id, which the bus's deduplication or the consumer's inbox absorbs.
 */
export interface OutboxRelay {
  /**
   * Starts relaying in the background: a pass now, then on every `notify()`, every notification of
   * the outbox channel (unless `listen: false`) and poll.
   */
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
  /**
   * Wakes the background loop now. The outbox's wake-up does this for every commit that appended
   * events; calling it after such a commit saves this process' relay the notification's round trip.
   */
  notify(): void;
  /** Events committed and not yet published. */
  backlog(): Promise<number>;
}

/** The event the relay appends when it moves an outbox row to `outbox_dead_letters`. */
export const DEAD_LETTERED_EVENT = 'outbox.event.dead_lettered';
const MAX_ERROR_LENGTH = 1_000;

interface PassOutcome {
  readonly claimed: number;
  readonly published: number;
  readonly failed: number;
  readonly busDown: boolean;
}

interface RoundsOutcome {
  readonly published: string[];
  /** Rows left for a later pass: their key is held back, or the pass stopped. */
  readonly deferred: string[];
  readonly failed: number;
  readonly busDown: boolean;
}

const describeError = (error: unknown): string =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, MAX_ERROR_LENGTH);

/**
 * A failure that says nothing about the message: a publish that timed out or lost its connection
 * (a broker too busy to acknowledge, though it answers pings), or the in-process bus's own database
 * failing. Such failures never count towards dead-lettering; a refusal of the message itself
 * (too large, a subject the broker rejects) does.
 */
const isTransportFailure = (error: unknown): boolean =>
  isDatabaseError(error) || /time(d)?[ -]?out|connection|closed|disconnect|ECONN|EPIPE|no responders/i.test(describeError(error));

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, bus, logger } = options;
  const clock = options.clock ?? createSystemClock();
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const batchSize = options.batchSize ?? 100;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const subjectFor = options.subjectFor ?? ((event: SystemEvent) => event.event_type);
  const alone = options.exclusive ?? db.kind === 'pglite';
  const relayId = randomUUID();
  const maxAttempts = options.maxAttempts ?? 10;
  const maxInFlight = options.maxInFlight ?? 256;
  let passes = 0;
  // The last pass found the bus down: the next one probes with a single publish before sending rounds.
  let busLooksDown = false;

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

  /** Moves a row the bus kept refusing aside, with an event saying so, in one transaction. */
  const deadLetter = async (row: ClaimedEvent): Promise<void> => {
    const dead = await db.transaction(async (tx) => {
      const moved = await moveToDeadLetters(tx, row.event.event_id);
      if (moved !== undefined) {
        await appendEvent(tx, {
          event_type: DEAD_LETTERED_EVENT,
          source_service: 'platform.outbox',
          correlation_id: moved.correlation_id,
          key: `outbox-dead-letter:${moved.event_id}`,
          payload: {
            event_id: moved.event_id,
            event_type: moved.event_type,
            ordering_key: moved.ordering_key,
            attempts: moved.attempts,
            rejections: moved.rejections,
            last_error: moved.last_error,
          },
        });
      }
      return moved;
    });
    if (dead === undefined) return;
    logger?.error(
      { event_id: dead.event_id, event_type: dead.event_type, rejections: dead.rejections, last_error: dead.last_error },
      'outbox event dead-lettered: the bus refused it every time; later events of its key go on',
    );
    options.onDeadLetter?.(dead);
  };

  /**
   * Publishes `rows` with many publishes in flight at once (JetStream and Redis pipeline them on one
   * connection), in rounds that hold at most one row per ordering key: a key's next row goes out only
   * after its previous one was stored, so each key keeps commit order. A failed row holds back the
   * rest of its key. `probe` sends one row alone first, so a bus that was down costs one attempt, not
   * a round of them.
   */
  const publishInRounds = async (
    rows: readonly ClaimedEvent[],
    held: Set<string>,
    token: string,
    halted: () => boolean,
    probe: boolean,
  ): Promise<RoundsOutcome> => {
    const deadline = clock.now() + leaseMs / 2;
    const published: string[] = [];
    const deferred: string[] = [];
    let failed = 0;
    let busDown = false;
    let waiting = [...rows];
    let limit = probe ? 1 : maxInFlight;
    while (waiting.length > 0) {
      if (busDown || clock.now() > deadline || halted()) {
        deferred.push(...waiting.map((row) => row.event.event_id));
        break;
      }
      const round: ClaimedEvent[] = [];
      const later: ClaimedEvent[] = [];
      const inRound = new Set<string>();
      for (const row of waiting) {
        if (held.has(row.key)) deferred.push(row.event.event_id);
        else if (inRound.has(row.key) || round.length >= limit) later.push(row);
        else {
          inRound.add(row.key);
          round.push(row);
        }
      }
      const outcomes = await Promise.allSettled(round.map((row) => bus.publish(toMessage(row))));
      const refused = round.flatMap((row, i) => {
        const outcome = outcomes[i] as PromiseSettledResult<void>;
        if (outcome.status === 'fulfilled') {
          published.push(row.event.event_id);
          return [];
        }
        return [{ row, error: outcome.reason as unknown }];
      });
      // Every publish of the round failed: the bus is down, unless it still answers (then it refused these messages).
      const answering =
        refused.length < round.length ||
        (await bus.ping().then(
          () => true,
          () => false,
        ));
      busDown = refused.length > 0 && !answering;
      for (const { row, error } of refused) {
        failed += 1;
        held.add(row.key);
        logger?.warn({ err: error, event_id: row.event.event_id, event_type: row.event.event_type }, 'outbox publish failed; will retry');
        const rejected = answering && !isTransportFailure(error);
        const rejections = await recordFailure(db, alone ? null : token, row.event.event_id, describeError(error), rejected);
        if (rejected && rejections >= maxAttempts) await deadLetter(row);
      }
      waiting = later;
      limit = maxInFlight;
    }
    return { published, deferred, failed, busDown };
  };

  /** Claims one batch, publishes what may go out now (until `halted`), and records the outcome of every row. */
  const runPass = async (halted: () => boolean, probe: boolean): Promise<PassOutcome> => {
    const token = `${relayId}:${(passes += 1)}`;
    const claimed = alone ? await selectPending(db, batchSize) : await claimPending(db, token, batchSize, leaseMs);
    if (claimed.length === 0) return { claimed: 0, published: 0, failed: 0, busDown: false };
    const held = alone ? new Set<string>() : await keysWaitingForEarlierEvents(db, token, claimed);
    if (bus.publishBatch !== undefined && held.size === 0 && !halted() && !probe) {
      // One round trip for the pass (the in-process bus on PGlite): all stored, in order, or none.
      try {
        await bus.publishBatch(claimed.map(toMessage));
        await markPublished(
          db,
          claimed.map((row) => row.event.event_id),
        );
        return { claimed: claimed.length, published: claimed.length, failed: 0, busDown: false };
      } catch (error) {
        // Nothing was stored, and which row the bus refused is not known: the rounds below find out.
        logger?.warn({ err: error, events: claimed.length }, 'outbox batch publish failed; publishing one by one');
      }
    }
    const outcome = await publishInRounds(claimed, held, token, halted, probe);
    await markPublished(db, outcome.published);
    // Deferred rows of a relay alone on its database were never reserved: they simply stay pending.
    if (!alone) await release(db, token, outcome.deferred);
    return { claimed: claimed.length, published: outcome.published.length, failed: outcome.failed, busDown: outcome.busDown };
  };

  /** Passes until the outbox is empty, a pass makes no progress, the bus looks down, or `halted` says so. */
  const drain = async (halted: () => boolean): Promise<PassOutcome> => {
    let total: PassOutcome = { claimed: 0, published: 0, failed: 0, busDown: false };
    for (;;) {
      if (halted()) return total;
      const pass = await runPass(halted, busLooksDown);
      busLooksDown = pass.busDown;
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
  const exclusive = createOneAtATime();

  let running = false;
  let loop: Promise<void> | undefined;
  let notified = false;
  let backingOff = false;
  let wake: (() => void) | undefined;

  /** Waits `ms` on the clock, or until `wake()`. */
  const pause = async (ms: number): Promise<void> => {
    const interrupt = new AbortController();
    wake = () => interrupt.abort();
    try {
      await clock.sleep(ms, interrupt.signal);
    } catch (error) {
      if (!interrupt.signal.aborted) throw error;
    } finally {
      wake = undefined;
    }
  };

  const notify = (): void => {
    notified = true;
    if (!backingOff) wake?.();
  };

  // Listening is set up by the loop, and set up again on a later pass if the database refused it.
  const listenToOutbox = options.listen ?? true;
  let listening: Listening | undefined;
  let listenFailed = false;
  const ensureListening = async (): Promise<void> => {
    if (!listenToOutbox || listening !== undefined) return;
    try {
      listening = await db.listen(OUTBOX_CHANNEL, notify);
      if (listenFailed) logger?.warn({}, 'outbox relay listens for commits again');
      listenFailed = false;
    } catch (error) {
      if (!listenFailed) logger?.warn({ err: error }, 'outbox relay cannot listen for commits; polling until it can');
      listenFailed = true;
    }
  };

  const runLoop = async (): Promise<void> => {
    let failingPasses = 0;
    while (running) {
      await ensureListening();
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
      const stopping = listening;
      listening = undefined;
      await stopping?.stop();
    },
    async flush(flushOptions = {}) {
      const { withinMs } = flushOptions;
      const until = withinMs === undefined ? Infinity : clock.now() + withinMs;
      const { published, failed } = await exclusive(() => drain(() => clock.now() >= until));
      return { published, failed };
    },
    notify,
    backlog: () => countPending(db),
  };
}
