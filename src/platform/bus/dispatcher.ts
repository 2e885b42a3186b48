import type { Clock } from '../clock.ts';
import { isTransientDatabaseError } from '../db/index.ts';
import { DEAD_LETTER_HEADERS, deadLetterSubject } from './port.ts';
import type { Delivery, Handler, OutgoingMessage, Subscription } from './port.ts';
import type { ResolvedSubscribeOptions } from './subscribe-options.ts';

/**
 * The delivery policy every adapter shares: concurrency limit, per-key order, retry with
 * backoff, dead-lettering, keeping unsettled deliveries alive, and what stopping means.
 * Adapters only move messages: they pull from their broker, ack, and extend ack deadlines.
 *
 * Failed attempts are retried here, in the subscriber, while the broker still counts the
 * delivery as in flight: a broker-side redelivery (NATS nak, a Redis re-claim) would let later
 * messages with the same key overtake the failed one. The attempt number starts from the
 * broker's delivery count, so a message whose subscribers keep dying is still dead-lettered
 * once that count passes `maxDeliver`.
 *
 * Dead letters are for poison messages, not for outages: a handler failing because the database
 * is unreachable, overloaded or restarting (`isTransientDatabaseError`) is retried with backoff,
 * without counting towards `maxDeliver`, for as long as the event is retained (`retainMs`). An
 * outage of minutes would otherwise turn every message in flight into a dead letter nobody replays.
 */

/** A message as an adapter hands it over, with the broker's delivery count and how to settle it. */
export interface InboundDelivery {
  readonly subject: string;
  readonly data: unknown;
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** How many times the broker has handed this message out, this time included (1 first). */
  readonly deliveryCount: number;
  /** When the broker stored the message (ms since the epoch), where it says; else its age counts from its first attempt here. */
  readonly publishedAt?: number;
  /** Settles the message for its consumer; it is not delivered to the consumer again. */
  ack(): Promise<void>;
  /** Restarts the broker's ack-wait clock so an unsettled delivery is not handed to another subscriber. */
  extend(): Promise<void>;
}

/** Where a subscription's deliveries come from. */
export interface DeliverySource {
  /**
   * Hands at most `max` deliveries to `accept`, each as soon as it arrives, and resolves when this
   * pull is over (some arrived, a broker-side wait expired, or `signal` aborted). Rejections are
   * reported and the pull is retried with backoff.
   */
  pull(max: number, signal: AbortSignal, accept: (delivery: InboundDelivery) => void): Promise<void>;
  /**
   * Called on every renewal tick (a quarter of the ack wait) while the subscription runs, busy or
   * not, e.g. to tell the broker an ephemeral consumer is still in use. Rejections are reported.
   */
  keepAlive?(): Promise<void>;
  /** Releases the source's resources after the subscription stopped (and removes an ephemeral consumer). */
  close?(): Promise<void>;
}

/** Where a failure the bus handled itself happened. */
export interface BusErrorContext {
  /**
   * `stop`: removing an ephemeral consumer failed (the broker removes it after its inactivity
   * bound instead); `maintenance`: a broker housekeeping pass (expiring ephemeral consumers,
   * trimming) failed and runs again next interval.
   */
  readonly stage: 'handler' | 'ack' | 'keep-alive' | 'dead-letter' | 'pull' | 'connection' | 'stop' | 'maintenance';
  /** Absent for connection errors, which are the bus' rather than one consumer's. */
  readonly consumer?: string;
  readonly subject?: string;
  readonly id?: string;
  readonly attempt?: number;
}

/** Told about failures the bus recovers from on its own (to log or count them). */
export type BusErrorListener = (error: unknown, context: BusErrorContext) => void;

export interface SubscriptionRuntime {
  readonly options: ResolvedSubscribeOptions;
  readonly handler: Handler;
  readonly source: DeliverySource;
  /** The bus' own publish, used for dead letters. */
  readonly publish: (message: OutgoingMessage) => Promise<void>;
  readonly clock: Clock;
  readonly onError: BusErrorListener;
}

const MAX_PULL_BACKOFF_MS = 5_000;
const MAX_REASON_LENGTH = 500;

/**
 * Delay before retrying after failed attempt `attempt`: exponential, capped at `maxRetryDelayMs`
 * (default 30 s) or at `retryDelayMs` when that is larger, with ±20% jitter.
 */
export const retryDelay = (retryDelayMs: number, attempt: number, maxRetryDelayMs = 30_000): number => {
  const capped = Math.min(Math.max(maxRetryDelayMs, retryDelayMs), retryDelayMs * 2 ** Math.min(attempt - 1, 52));
  return Math.round(capped * (0.8 + Math.random() * 0.4));
};

const describeFailure = (error: unknown): string =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).replace(/[\r\n\0]+/g, ' ').slice(0, MAX_REASON_LENGTH);

/** Sleeps unless stopped first; false when the stop signal ended the wait. */
const sleepUnlessStopped = async (clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> => {
  if (signal.aborted) return false;
  try {
    await clock.sleep(ms, signal);
    return true;
  } catch (error) {
    if (signal.aborted) return false;
    throw error;
  }
};

/**
 * Runs one subscriber: pulls from `source` while it has capacity and dispatches each delivery.
 * `stop()` ends pulling, renewing and settling; deliveries still in flight stay unsettled, so
 * the broker hands them to another subscriber after ack wait. A handler still running after
 * stop may finish, but its result is ignored.
 */
export function startSubscription(runtime: SubscriptionRuntime): Subscription {
  const { options, handler, source, publish, clock, onError } = runtime;
  const { consumer, concurrency, maxDeliver, ackWaitMs } = options;
  const stopController = new AbortController();
  const stopSignal = stopController.signal;
  const held = new Set<InboundDelivery>();
  /** Per key, the deliveries this subscriber holds in arrival order; the head is the one running. */
  const keyQueues = new Map<string, InboundDelivery[]>();
  let wakeLoop: (() => void) | undefined;

  const report = (error: unknown, stage: BusErrorContext['stage'], delivery?: InboundDelivery, attempt?: number): void =>
    onError(error, { stage, consumer, subject: delivery?.subject, id: delivery?.id, attempt });

  const deadLetter = async (delivery: InboundDelivery, attempts: number, reason: string): Promise<void> => {
    try {
      await publish({
        subject: deadLetterSubject(consumer, delivery.subject),
        data: delivery.data,
        // Deterministic, so a dead letter published twice (we died before acking) dedups on the broker.
        id: `dlq:${consumer}:${delivery.id}`,
        key: delivery.key,
        headers: {
          ...delivery.headers,
          [DEAD_LETTER_HEADERS.originalSubject]: delivery.subject,
          [DEAD_LETTER_HEADERS.reason]: reason,
          [DEAD_LETTER_HEADERS.attempts]: String(attempts),
          [DEAD_LETTER_HEADERS.consumer]: consumer,
        },
      });
    } catch (error) {
      // Left unsettled: the broker redelivers it after ack wait and we try the dead letter again.
      report(error, 'dead-letter', delivery, attempts);
      return;
    }
    if (stopSignal.aborted) return;
    await delivery.ack().catch((error: unknown) => report(error, 'ack', delivery, attempts));
  };

  /** Whether a failure is the database's passing outage and the delivery, first tried at `since`, is still retained. */
  const retryTransient = (error: unknown, since: number): boolean =>
    isTransientDatabaseError(error) && (options.retainMs === 0 || clock.now() - since < options.retainMs);

  const handle = async (delivery: InboundDelivery): Promise<void> => {
    let attempt = delivery.deliveryCount;
    if (attempt > maxDeliver) {
      // Every earlier delivery ended without a settlement (subscriber died, ack wait ran out).
      await deadLetter(delivery, attempt - 1, `not settled after ${attempt - 1} deliveries`);
      return;
    }
    const since = delivery.publishedAt ?? clock.now();
    /** Failures that count towards maxDeliver: the broker's earlier deliveries, then each non-transient failure. */
    let counted = attempt;
    let transientInARow = 0;
    for (;;) {
      if (stopSignal.aborted) return;
      try {
        const { subject, data, id, key, headers } = delivery;
        const view: Delivery = { subject, data, id, key, headers, attempt };
        await handler(view);
      } catch (error) {
        if (stopSignal.aborted) return;
        report(error, 'handler', delivery, attempt);
        let delay: number;
        if (retryTransient(error, since)) {
          transientInARow += 1;
          delay = retryDelay(options.retryDelayMs, transientInARow, options.maxRetryDelayMs);
        } else {
          if (counted >= maxDeliver) {
            await deadLetter(delivery, attempt, describeFailure(error));
            return;
          }
          transientInARow = 0;
          delay = retryDelay(options.retryDelayMs, counted, options.maxRetryDelayMs);
          counted += 1;
        }
        if (!(await sleepUnlessStopped(clock, delay, stopSignal))) return;
        attempt += 1;
        continue;
      }
      if (stopSignal.aborted) return;
      await delivery.ack().catch((error: unknown) => report(error, 'ack', delivery, attempt));
      return;
    }
  };

  const run = (delivery: InboundDelivery): void => {
    void handle(delivery)
      .catch((error: unknown) => report(error, 'handler', delivery))
      .finally(() => {
        held.delete(delivery);
        if (delivery.key !== undefined) {
          const queue = keyQueues.get(delivery.key);
          queue?.shift();
          const next = queue?.[0];
          if (next === undefined) keyQueues.delete(delivery.key);
          else run(next);
        }
        wakeLoop?.();
      });
  };

  const accept = (delivery: InboundDelivery): void => {
    // After stop the delivery stays unsettled on purpose; the broker hands it out again.
    if (stopSignal.aborted) return;
    held.add(delivery);
    if (delivery.key === undefined) return run(delivery);
    const queue = keyQueues.get(delivery.key);
    if (queue !== undefined) queue.push(delivery);
    else {
      keyQueues.set(delivery.key, [delivery]);
      run(delivery);
    }
  };

  const hasCapacity = (): Promise<void> =>
    held.size < concurrency || stopSignal.aborted
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          wakeLoop = () => {
            if (held.size >= concurrency && !stopSignal.aborted) return;
            wakeLoop = undefined;
            resolve();
          };
        });

  const pullLoop = async (): Promise<void> => {
    let failures = 0;
    while (!stopSignal.aborted) {
      await hasCapacity();
      if (stopSignal.aborted) return;
      try {
        await source.pull(concurrency - held.size, stopSignal, accept);
        failures = 0;
      } catch (error) {
        if (stopSignal.aborted) return;
        report(error, 'pull');
        failures += 1;
        if (!(await sleepUnlessStopped(clock, Math.min(MAX_PULL_BACKOFF_MS, 50 * 2 ** failures), stopSignal))) return;
      }
    }
  };

  const keepAliveLoop = async (): Promise<void> => {
    // Four renewals per ack wait: a late one still lands in time, and a stopped subscriber's
    // deliveries come due no sooner than 3/4 of the ack wait after it stopped.
    const every = Math.max(25, Math.floor(ackWaitMs / 4));
    while (await sleepUnlessStopped(clock, every, stopSignal)) {
      for (const delivery of held) {
        delivery.extend().catch((error: unknown) => report(error, 'keep-alive', delivery));
      }
      source.keepAlive?.().catch((error: unknown) => report(error, 'keep-alive'));
    }
  };

  const loops = Promise.all([pullLoop(), keepAliveLoop()]);
  let stopped: Promise<void> | undefined;
  return {
    consumer,
    stop: () => {
      stopped ??= (async () => {
        stopController.abort(new Error(`subscription of consumer '${consumer}' stopped`));
        wakeLoop?.();
        await loops;
        await source.close?.();
      })();
      return stopped;
    },
  };
}
