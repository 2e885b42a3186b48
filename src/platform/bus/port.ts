/**
 * The event bus port. Three adapters implement it (in-process, NATS JetStream, Redis Streams)
 * and all of them pass `test/conformance/bus.suite.ts`.
 *
 * Subjects are dot-separated tokens (`ai.route.decided`). Patterns use NATS wildcards:
 * `*` matches exactly one token, `>` matches one or more trailing tokens.
 */

/** What a producer hands to the bus. `data` must be JSON-serialisable. */
export interface OutgoingMessage {
  readonly subject: string;
  readonly data: unknown;
  /** Stable id (an event's `event_id`). Adapters that can deduplicate on it do; consumers keep an inbox for the rest. */
  readonly id?: string;
  /**
   * Ordering key: a consumer handles messages with the same key one at a time, in publish order.
   * The brokers hand messages to a consumer's subscribers without key affinity, so the order is
   * kept within each subscriber; a consumer that needs it across replicas runs one subscriber.
   */
  readonly key?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One delivery of a message to one consumer. */
export interface Delivery {
  readonly subject: string;
  readonly data: unknown;
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** 1 on the first delivery, counting redeliveries after failures and after a consumer died without acking. */
  readonly attempt: number;
}

/**
 * Settles a delivery by how it returns: resolving acks it, throwing makes it fail
 * (retried with backoff, dead-lettered after `maxDeliver` attempts; a transient failure is
 * retried for `retainMs` without counting). A delivery that is never settled (the consumer
 * died) is redelivered after `ackWaitMs`.
 */
export type Handler = (delivery: Delivery) => Promise<void>;

export interface SubscribeOptions {
  /**
   * Durable consumer name, `[A-Za-z0-9_-]+` (at most 64). Subscribers sharing a name share the work;
   * messages published while none runs are kept for it. A consumer receives what is published after
   * it was first subscribed, not what came before (the same on every adapter).
   */
  readonly consumer: string;
  /** Subject pattern this consumer receives; fixed when the consumer is first created (another one throws `BUS_CONSUMER_CONFLICT`). */
  readonly subject: string;
  /** Attempts before a message is dead-lettered. Default 5. */
  readonly maxDeliver?: number;
  /**
   * How long a delivery may stay unsettled before the bus hands it to another subscriber; a running
   * handler's deliveries are renewed meanwhile. Default 30 000. On NATS it is the durable consumer's
   * setting (the latest subscriber's value wins) and should be 2 000 or more (see nats.ts).
   */
  readonly ackWaitMs?: number;
  /** Deliveries this subscriber holds at once, running or waiting behind an earlier one with the same key. Default 16. */
  readonly concurrency?: number;
  /** Wait before the first retry of a failed delivery; doubled for each later retry up to `maxRetryDelayMs` (or this value, if larger). Default 1 000. */
  readonly retryDelayMs?: number;
  /** Longest wait between two retries. Default 30 000. */
  readonly maxRetryDelayMs?: number;
  /**
   * How long a delivery whose handler fails for a transient reason (the database is unreachable,
   * overloaded, restarting; see `isTransientDatabaseError`) keeps being retried, counted from when
   * the broker stored it (from its first attempt here where the broker does not say): such failures
   * do not count towards `maxDeliver`, so an outage shorter than this dead-letters nothing. Meant to
   * be how long the event itself is retained. 0 (the default): for as long as the subscriber runs.
   */
  readonly retainMs?: number;
  /**
   * A consumer that exists only while its subscriber runs: it receives messages published after it
   * subscribed, its messages are not kept when it stops, and the broker removes it when it stops
   * or, if its process dies, after a bounded inactivity time (the adapter's `ephemeralTimeoutMs`,
   * at least twice the ack wait). Meant for per-process state such as cache invalidation: give
   * each subscriber a name of its own. If the consumer is removed while its subscriber still runs
   * (another subscriber of that name stopped, or the broker dropped it after an outage longer than
   * the inactivity bound) the subscriber recreates it and misses what was published meanwhile.
   * A name is either ephemeral or durable: subscribing the other way while the consumer exists
   * throws `BUS_CONSUMER_CONFLICT`. Default false.
   */
  readonly ephemeral?: boolean;
}

export interface Subscription {
  readonly consumer: string;
  /** Stops taking new deliveries. Deliveries still in flight are not acked, so the bus redelivers them. */
  stop(): Promise<void>;
}

export interface EventBus {
  readonly kind: 'memory' | 'nats' | 'redis';
  /** Resolves once the broker has stored the message; from then on it is not lost. */
  publish(message: OutgoingMessage): Promise<void>;
  /**
   * Stores several messages in order, all or none, in one round trip where the adapter can (the
   * in-process bus on a database); resolves once all are stored. Optional: callers fall back to `publish`.
   */
  publishBatch?(messages: readonly OutgoingMessage[]): Promise<void>;
  subscribe(options: SubscribeOptions, handler: Handler): Promise<Subscription>;
  /** Messages published to the consumer's subjects and not yet acked by it (0 for an unknown or removed consumer). */
  lag(consumer: string): Promise<number>;
  /** Round trip to the broker in milliseconds; throws when it is unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

/** Messages that failed `maxDeliver` times are republished here, with the headers below. */
export const deadLetterSubject = (consumer: string, subject: string): string => `dlq.${consumer}.${subject}`;
export const DEAD_LETTER_HEADERS = {
  originalSubject: 'x-dead-letter-subject',
  reason: 'x-dead-letter-reason',
  attempts: 'x-dead-letter-attempts',
  consumer: 'x-dead-letter-consumer',
} as const;
