import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerInfo,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, nanos } from '@nats-io/transport-node';
import { createSystemClock, type Clock } from '../clock.ts';
import { busError, ephemeralConflict } from './errors.ts';
import { startSubscription, type BusErrorListener, type InboundDelivery } from './dispatcher.ts';
import { createBusLifecycle } from './lifecycle.ts';
import { decodePayload, prepareMessage } from './message.ts';
import type { EventBus } from './port.ts';
import { assertConsumerName, assertSubject } from './subject-pattern.ts';
import { ephemeralTimeout, resolveEphemeralTimeout, resolveSubscribeOptions, type ResolvedSubscribeOptions } from './subscribe-options.ts';

/**
 * The NATS JetStream adapter. One stream per bus namespace captures `<subjectPrefix>.>`; each
 * consumer name is a durable pull consumer with explicit ack whose filter is the pattern under
 * the prefix. Retries and dead letters are the shared dispatcher's (the consumer's own
 * `max_deliver` is unlimited), so behaviour matches the other adapters. An ephemeral consumer is
 * the same kind of consumer with `inactive_threshold` set (NATS 2.9 honours it on durable pull
 * consumers: pull requests and in-progress acks count as activity), deleted when its subscriber
 * stops; the threshold marks it as ephemeral to later subscribers.
 *
 * The stream's limits (`maxAgeMs`, `maxBytes`, `dedupWindowMs`) are applied when it is created and,
 * where they differ, to an existing stream: the configuration is the truth, and the last process to
 * start with new values changes them for every process on the stream.
 */
export interface NatsBusOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly url: string | readonly string[];
  /** JetStream stream name, `[A-Za-z0-9_-]+`; created when missing. */
  readonly stream: string;
  /** Subject prefix of this namespace (`blocks`); bus subjects are stored as `<prefix>.<subject>`. */
  readonly subjectPrefix: string;
  /** The stream's duplicate window for message ids; at most `maxAgeMs` when that is set. Default 120 000. */
  readonly dedupWindowMs?: number;
  /** Messages older than this are dropped from the stream; 0 keeps them. Default 0. */
  readonly maxAgeMs?: number;
  /** The stream's size limit in bytes; past it the oldest messages are dropped. 0: no limit. Default 0. */
  readonly maxBytes?: number;
  /**
   * How long the server keeps an ephemeral consumer whose subscriber shows no sign of life (its
   * process died) before deleting it; at least twice the consumer's ack wait. Default 30 000.
   */
  readonly ephemeralTimeoutMs?: number;
  /** Connection name shown in server monitoring. */
  readonly name?: string;
  readonly clock?: Clock;
  readonly onError?: BusErrorListener;
}

const STREAM_NAME = /^[A-Za-z0-9_-]+$/;
/** Internal headers: JetStream's id header and ours. Stripped from deliveries. */
const ID_HEADER = 'Nats-Msg-Id';
const KEY_HEADER = 'x-bus-key';
const MAX_PULL_EXPIRES_MS = 5_000;

const isApiError = (error: unknown, code: number): boolean => error instanceof JetStreamApiError && error.code === code;

const toInbound = (message: JsMsg, prefixLength: number): InboundDelivery => {
  const headers: Record<string, string> = {};
  let id = '';
  let key: string | undefined;
  for (const [name, values] of message.headers ?? []) {
    const value = values[0] ?? '';
    const lower = name.toLowerCase();
    if (lower === ID_HEADER.toLowerCase()) id = value;
    else if (lower === KEY_HEADER) key = value;
    else if (!lower.startsWith('nats-') && !lower.startsWith('x-bus-')) headers[name] = value;
  }
  return {
    subject: message.subject.slice(prefixLength),
    data: decodePayload(message.string()),
    id: id === '' ? `${message.info.stream}:${message.seq}` : id,
    key,
    headers,
    deliveryCount: message.info.deliveryCount,
    publishedAt: message.time.getTime(),
    ack: async () => {
      await message.ackAck();
    },
    extend: async () => message.working(),
  };
};

/**
 * Connects, makes sure the stream exists and returns the bus. Throws `BUS_INVALID_OPTIONS` for
 * a bad stream name or prefix, and the client's error when the server is unreachable.
 * `close()` stops the subscriptions (in-flight deliveries are left to be redelivered) and drains.
 */
export async function createNatsBus(options: NatsBusOptions): Promise<EventBus> {
  if (!STREAM_NAME.test(options.stream)) {
    throw busError('BUS_INVALID_OPTIONS', `NATS stream name '${options.stream}' must be [A-Za-z0-9_-]+.`, {
      option: 'stream',
    });
  }
  try {
    assertSubject(options.subjectPrefix);
  } catch (error) {
    throw busError(
      'BUS_INVALID_OPTIONS',
      `subjectPrefix '${options.subjectPrefix}' is not a valid subject.`,
      {
        option: 'subjectPrefix',
      },
      error,
    );
  }
  const { stream, subjectPrefix } = options;
  const ephemeralTimeoutMs = resolveEphemeralTimeout(options.ephemeralTimeoutMs);
  const prefix = `${subjectPrefix}.`;
  const clock = options.clock ?? createSystemClock();
  const onError = options.onError ?? (() => undefined);
  const lifecycle = createBusLifecycle('nats');

  const nc = await connect({
    servers: typeof options.url === 'string' ? options.url : [...options.url],
    name: options.name,
    maxReconnectAttempts: -1,
  });
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
    await ensureStream(jsm, stream, `${prefix}>`, options);
  } catch (error) {
    await nc.close();
    throw error;
  }
  const js = jetstream(nc);

  const consumerInfo = async (consumer: string): Promise<ConsumerInfo | undefined> => {
    try {
      return await jsm.consumers.info(stream, consumer);
    } catch (error) {
      if (isApiError(error, JetStreamApiCodes.ConsumerNotFound)) return undefined;
      throw error;
    }
  };

  const ensureConsumer = async (resolved: ResolvedSubscribeOptions): Promise<void> => {
    const filter = `${prefix}${resolved.subject}`;
    const ackWait = nanos(resolved.ackWaitMs);
    // 0 (none) for a durable consumer: the server keeps it however long it goes unused.
    const inactiveThreshold = resolved.ephemeral ? nanos(ephemeralTimeout(resolved, ephemeralTimeoutMs)) : 0;
    let info = await consumerInfo(resolved.consumer);
    if (info === undefined) {
      try {
        info = await jsm.consumers.add(stream, {
          durable_name: resolved.consumer,
          ack_policy: AckPolicy.Explicit,
          ack_wait: ackWait,
          // A consumer gets what is published after it was first created, like the other adapters.
          deliver_policy: DeliverPolicy.New,
          filter_subject: filter,
          max_deliver: -1,
          ...(resolved.ephemeral ? { inactive_threshold: inactiveThreshold } : {}),
        });
      } catch (error) {
        // Another subscriber may have created it a moment ago; compare with what it made.
        info = await consumerInfo(resolved.consumer);
        if (info === undefined) throw error;
      }
    }
    if (info.config.filter_subject !== filter) {
      const existing = info.config.filter_subject?.slice(prefix.length) ?? '(none)';
      throw busError(
        'BUS_CONSUMER_CONFLICT',
        `Consumer '${resolved.consumer}' receives '${existing}', not '${resolved.subject}'; use another consumer name.`,
        { consumer: resolved.consumer, subject: resolved.subject, existing_subject: existing },
      );
    }
    const existingEphemeral = (info.config.inactive_threshold ?? 0) > 0;
    if (existingEphemeral !== resolved.ephemeral) throw ephemeralConflict(resolved.consumer, existingEphemeral);
    if (info.config.ack_wait !== ackWait || (resolved.ephemeral && info.config.inactive_threshold !== inactiveThreshold)) {
      // Ack wait is the consumer's on JetStream: the latest subscriber's value applies to all.
      await jsm.consumers.update(stream, resolved.consumer, {
        ack_wait: ackWait,
        ...(resolved.ephemeral ? { inactive_threshold: inactiveThreshold } : {}),
      });
    }
  };

  /** Deletes a consumer; one already gone (the server expired it, a sibling deleted it) is fine. */
  const deleteConsumer = async (consumer: string): Promise<void> => {
    try {
      await jsm.consumers.delete(stream, consumer);
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
    }
  };

  const bus: EventBus = {
    kind: 'nats',
    async publish(outgoing) {
      lifecycle.assertOpen();
      const message = prepareMessage(outgoing);
      const headers = natsHeaders();
      for (const [name, value] of Object.entries(message.headers)) headers.set(name, value);
      if (message.key !== undefined) headers.set(KEY_HEADER, message.key);
      // A duplicate id is acknowledged with `duplicate: true`: already stored, which is success.
      await js.publish(`${prefix}${message.subject}`, message.payload, { msgID: message.id, headers });
    },
    async subscribe(subscribeOptions, handler) {
      lifecycle.assertOpen();
      const resolved = resolveSubscribeOptions(subscribeOptions);
      await ensureConsumer(resolved);
      let consumer = await js.consumers.get(stream, resolved.consumer);
      /** After a failed pull: an ephemeral consumer that is gone is made again, so the subscriber goes on. */
      const recreateIfRemoved = async (): Promise<boolean> => {
        if (!resolved.ephemeral || (await consumerInfo(resolved.consumer)) !== undefined) return false;
        await ensureConsumer(resolved);
        consumer = await js.consumers.get(stream, resolved.consumer);
        onError(
          new Error(
            `ephemeral consumer '${resolved.consumer}' was removed while in use; recreated it, messages published meanwhile are missed`,
          ),
          {
            stage: 'pull',
            consumer: resolved.consumer,
          },
        );
        return true;
      };
      // A pull request outlives a stopped subscriber on the server (JetStream has no cancel), and a
      // delivery routed to it goes astray: NATS 2.9 then delays it and miscounts its deliveries.
      // Requests expiring within half the ack wait are gone before the stopped subscriber's
      // deliveries come due (3/4 of the ack wait after its last renewal). The client's floor is 1 s,
      // so keep ackWaitMs at 2 s or more on NATS.
      const expires = Math.max(1_000, Math.min(MAX_PULL_EXPIRES_MS, Math.floor(resolved.ackWaitMs / 2)));
      const subscription = startSubscription({
        options: resolved,
        handler,
        clock,
        onError,
        publish: (message) => bus.publish(message),
        source: {
          async pull(max, signal, accept) {
            try {
              await fetchInto(consumer, { max_messages: max, expires }, signal, (message) => accept(toInbound(message, prefix.length)));
            } catch (error) {
              if (signal.aborted || !(await recreateIfRemoved())) throw error;
            }
          },
          async close() {
            if (!resolved.ephemeral || nc.isClosed()) return;
            await deleteConsumer(resolved.consumer).catch((error: unknown) =>
              onError(error, { stage: 'stop', consumer: resolved.consumer }),
            );
          },
        },
      });
      return lifecycle.track(subscription);
    },
    async lag(consumer) {
      assertConsumerName(consumer);
      lifecycle.assertOpen();
      const info = await consumerInfo(consumer);
      return info === undefined ? 0 : info.num_pending + info.num_ack_pending;
    },
    async ping() {
      lifecycle.assertOpen();
      return nc.rtt();
    },
    close: () =>
      lifecycle.close(async () => {
        if (!nc.isClosed()) await nc.drain();
      }),
  };
  return bus;
}

/** One pull request: hands each message to `accept` until it is done or `signal` aborts. */
async function fetchInto(
  consumer: Consumer,
  fetch: { max_messages: number; expires: number },
  signal: AbortSignal,
  accept: (message: JsMsg) => void,
): Promise<void> {
  const messages = await consumer.fetch(fetch);
  const stop = (): void => void messages.close();
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const message of messages) {
      // After stop a fetched message stays unsettled; the server redelivers it after ack wait.
      if (signal.aborted) break;
      accept(message);
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/** The retention a stream should have, in JetStream's units. */
interface StreamLimits {
  readonly max_age: number;
  readonly max_bytes: number;
  readonly duplicate_window: number;
}

function streamLimits(options: NatsBusOptions): StreamLimits {
  const maxAgeMs = options.maxAgeMs ?? 0;
  const maxBytes = options.maxBytes ?? 0;
  const dedupWindowMs = options.dedupWindowMs ?? 120_000;
  for (const [option, value] of [
    ['maxAgeMs', maxAgeMs],
    ['maxBytes', maxBytes],
    ['dedupWindowMs', dedupWindowMs],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw busError('BUS_INVALID_OPTIONS', `${option} must be a non-negative integer, got ${String(value)}.`, { option });
    }
  }
  // JetStream refuses a duplicate window longer than the messages are kept.
  if (maxAgeMs > 0 && dedupWindowMs > maxAgeMs) {
    throw busError('BUS_INVALID_OPTIONS', `dedupWindowMs (${dedupWindowMs}) must not exceed maxAgeMs (${maxAgeMs}).`, {
      option: 'dedupWindowMs',
    });
  }
  return {
    max_age: nanos(maxAgeMs),
    // JetStream's "no limit" is -1.
    max_bytes: maxBytes === 0 ? -1 : maxBytes,
    // 0 would mean JetStream's own default (2 minutes), not "no deduplication"; keep the smallest window instead.
    duplicate_window: nanos(Math.max(dedupWindowMs, 1)),
  };
}

/**
 * Creates the namespace's stream with the configured limits, or checks that an existing one
 * captures the prefix and brings its limits to the configured ones.
 */
async function ensureStream(jsm: JetStreamManager, stream: string, subjects: string, options: NatsBusOptions): Promise<void> {
  const limits = streamLimits(options);
  let info;
  try {
    info = await jsm.streams.info(stream);
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
    await jsm.streams.add({
      name: stream,
      subjects: [subjects],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      ...limits,
    });
    return;
  }
  if (!info.config.subjects?.includes(subjects)) {
    throw busError(
      'BUS_INVALID_OPTIONS',
      `NATS stream '${stream}' exists but does not capture '${subjects}' (it captures ${JSON.stringify(info.config.subjects ?? [])}).`,
      { option: 'stream' },
    );
  }
  const { config } = info;
  if (config.max_age !== limits.max_age || config.max_bytes !== limits.max_bytes || config.duplicate_window !== limits.duplicate_window) {
    await jsm.streams.update(stream, { ...config, ...limits });
  }
}
