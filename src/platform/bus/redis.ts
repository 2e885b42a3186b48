import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { createSystemClock, type Clock } from '../clock.ts';
import { busError, ephemeralConflict } from './errors.ts';
import { startSubscription, type BusErrorListener, type InboundDelivery } from './dispatcher.ts';
import { createBusLifecycle } from './lifecycle.ts';
import { decodePayload, prepareMessage } from './message.ts';
import type { EventBus } from './port.ts';
import {
  extendScript,
  forgetReaderScript,
  parseAutoClaim,
  parseDeliveryCounts,
  parseEntries,
  parseLastDeliveredId,
  parseReadGroup,
  publishScript,
  type StreamEntry,
} from './redis-streams.ts';
import { assertConsumerName, compileSubjectPattern } from './subject-pattern.ts';
import {
  dropEphemeralGroup,
  registerEphemeralGroup,
  startMaintenance,
  sweepEphemeralGroups,
  touchEphemeralGroup,
} from './redis-retention.ts';
import { ephemeralTimeout, resolveEphemeralTimeout, resolveSubscribeOptions, type ResolvedSubscribeOptions } from './subscribe-options.ts';

/**
 * The Redis Streams adapter. The namespace is one stream (`streamKey`); the subject is a field,
 * so a consumer group (one per consumer name) reads every entry and the subscriber acks the
 * ones its pattern does not match. Each subscriber is a reader in its group with its own
 * blocking connection; entries a dead reader left pending are reclaimed with XAUTOCLAIM once
 * idle for ack wait. An ephemeral consumer's group is destroyed when its subscriber stops, or by
 * any process's housekeeping once its subscriber stopped renewing its deadline (it died).
 * Housekeeping also trims the entries every group has acked (see redis-retention.ts). Keys used:
 * `<streamKey>`, `<streamKey>:consumers` (consumer → pattern), `<streamKey>:ephemeral`
 * (ephemeral group → deadline), `<streamKey>:id:<message id>` (dedup markers that expire).
 */
export interface RedisBusOptions {
  /** e.g. `redis://127.0.0.1:6379`. */
  readonly url: string;
  /** The namespace's stream key (`blocks:bus`); its other keys start with `<streamKey>:`. */
  readonly streamKey: string;
  /** A message id seen within this window is stored once; 0 turns dedup off. Default 120 000. */
  readonly dedupWindowMs?: number;
  /** How long `ping` waits before reporting Redis unreachable. Default 2 000. */
  readonly pingTimeoutMs?: number;
  /**
   * How long an ephemeral consumer's group outlives the last sign of life from its subscriber
   * (its process died) before housekeeping destroys it; at least twice the consumer's ack wait.
   * Default 30 000.
   */
  readonly ephemeralTimeoutMs?: number;
  /** Pause between housekeeping passes (expired ephemeral groups, trimming); 0 runs none. Default 10 000. */
  readonly maintenanceIntervalMs?: number;
  /**
   * Trimming also deletes entries older than this, even ones a group has not acked (a consumer
   * that never comes back otherwise keeps every entry from its position on). 0 keeps them, as
   * long as some group needs them. Default 0.
   */
  readonly maxAgeMs?: number;
  readonly clock?: Clock;
  readonly onError?: BusErrorListener;
}

const RECLAIM_EVERY_MAX_MS = 2_000;
const LAG_SCAN_BATCH = 500;

/** Headers as stored by `publish`; anything else (an entry written by another producer) yields none. */
const parseHeaders = (text: string | undefined): Record<string, string> => {
  const parsed = decodePayload(text ?? '{}');
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  return Object.fromEntries(Object.entries(parsed).filter((pair): pair is [string, string] => typeof pair[1] === 'string'));
};

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const checkNonNegative = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 0) {
    throw busError('BUS_INVALID_OPTIONS', `${name} must be a non-negative integer, got ${String(value)}.`, { option: name });
  }
  return value;
};

/** The other keys of a namespace, for tooling and test cleanup. */
export const redisBusKeys = (streamKey: string) => ({
  stream: streamKey,
  consumers: `${streamKey}:consumers`,
  ephemeral: `${streamKey}:ephemeral`,
  dedup: (id: string) => `${streamKey}:id:${id}`,
  /** SCAN pattern matching every key of the namespace. */
  all: `${streamKey}*`,
});

/**
 * Connects and returns the bus; throws the client's error when Redis is unreachable.
 * `close()` stops the subscriptions (in-flight entries stay pending for reclaim) and quits.
 */
export async function createRedisBus(options: RedisBusOptions): Promise<EventBus> {
  if (options.streamKey.length === 0 || /[\s*?[\]]/.test(options.streamKey)) {
    throw busError('BUS_INVALID_OPTIONS', `streamKey '${options.streamKey}' must be non-empty without spaces or glob characters.`, {
      option: 'streamKey',
    });
  }
  const keys = redisBusKeys(options.streamKey);
  const dedupWindowMs = options.dedupWindowMs ?? 120_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
  const ephemeralTimeoutMs = resolveEphemeralTimeout(options.ephemeralTimeoutMs);
  const maintenanceIntervalMs = checkNonNegative('maintenanceIntervalMs', options.maintenanceIntervalMs ?? 10_000);
  const maxAgeMs = checkNonNegative('maxAgeMs', options.maxAgeMs ?? 0);
  const clock = options.clock ?? createSystemClock();
  const onError = options.onError ?? (() => undefined);
  const lifecycle = createBusLifecycle('redis');
  const redis = new Redis(options.url, { lazyConnect: true });
  // ioredis reconnects by itself; without a listener its error events would be unhandled.
  const reportConnectionError = (error: unknown): void => onError(error, { stage: 'connection' });
  redis.on('error', reportConnectionError);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw error;
  }

  const conflict = (resolved: ResolvedSubscribeOptions, existing: string | null): Error =>
    busError(
      'BUS_CONSUMER_CONFLICT',
      `Consumer '${resolved.consumer}' receives '${String(existing)}', not '${resolved.subject}'; use another consumer name.`,
      { consumer: resolved.consumer, subject: resolved.subject, existing_subject: existing },
    );

  const ensureEphemeralGroup = async (resolved: ResolvedSubscribeOptions): Promise<void> => {
    const outcome = await registerEphemeralGroup(
      redis,
      keys,
      resolved.consumer,
      resolved.subject,
      ephemeralTimeout(resolved, ephemeralTimeoutMs),
    );
    if (outcome?.conflict === 'subject') throw conflict(resolved, outcome.existing);
    if (outcome?.conflict === 'durable') throw ephemeralConflict(resolved.consumer, false);
  };

  const ensureGroup = async (resolved: ResolvedSubscribeOptions): Promise<void> => {
    if (resolved.ephemeral) return ensureEphemeralGroup(resolved);
    try {
      // `$`: a consumer gets what is published after it was first created, like the other adapters.
      await redis.xgroup('CREATE', keys.stream, resolved.consumer, '$', 'MKSTREAM');
    } catch (error) {
      if (!errorMessage(error).startsWith('BUSYGROUP')) throw error;
    }
    await redis.hsetnx(keys.consumers, resolved.consumer, resolved.subject);
    const existing = await redis.hget(keys.consumers, resolved.consumer);
    if (existing !== resolved.subject) throw conflict(resolved, existing);
    if ((await redis.zscore(keys.ephemeral, resolved.consumer)) !== null) throw ephemeralConflict(resolved.consumer, true);
  };

  const openSubscription = async (resolved: ResolvedSubscribeOptions, handler: Parameters<EventBus['subscribe']>[1]) => {
    const group = resolved.consumer;
    const reader = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    const blocking = redis.duplicate({ lazyConnect: true });
    blocking.on('error', reportConnectionError);
    await blocking.connect();
    const reclaimEveryMs = Math.max(100, Math.min(RECLAIM_EVERY_MAX_MS, Math.floor(resolved.ackWaitMs / 2)));
    let reclaimCursor = '0-0';
    let lastReclaim = -Infinity;

    const toInbound = (entry: StreamEntry, deliveryCount: number): InboundDelivery => {
      const headers = parseHeaders(entry.fields.get('h'));
      return {
        subject: entry.fields.get('s') ?? '',
        data: decodePayload(entry.fields.get('d') ?? 'null'),
        id: entry.fields.get('i') ?? entry.id,
        key: entry.fields.get('k'),
        headers,
        deliveryCount,
        // A stream entry's id starts with the milliseconds at which Redis stored it.
        publishedAt: Number(entry.id.split('-')[0]),
        ack: async () => {
          await redis.xack(keys.stream, group, entry.id);
        },
        extend: async () => {
          await extendScript(redis, [keys.stream], [group, reader, entry.id]);
        },
      };
    };

    /** Hands over the entries this consumer's pattern matches and acks the rest. */
    const dispatch = async (entries: StreamEntry[], counts: (id: string) => number, accept: (d: InboundDelivery) => void) => {
      const skipped: string[] = [];
      for (const entry of entries) {
        if (resolved.matches(entry.fields.get('s') ?? '')) accept(toInbound(entry, counts(entry.id)));
        else skipped.push(entry.id);
      }
      if (skipped.length > 0) await redis.xack(keys.stream, group, ...skipped);
    };

    /** Takes over entries other readers left pending past ack wait (their subscriber died or stopped). */
    const reclaim = async (max: number): Promise<StreamEntry[]> => {
      if (clock.now() - lastReclaim < reclaimEveryMs) return [];
      lastReclaim = clock.now();
      const reply = await redis.call('XAUTOCLAIM', keys.stream, group, reader, resolved.ackWaitMs, reclaimCursor, 'COUNT', max);
      const { cursor, entries } = parseAutoClaim(reply);
      reclaimCursor = cursor;
      // Scanned part of the pending list without a find: go on scanning next round instead of waiting an interval.
      if (entries.length === 0 && cursor !== '0-0') lastReclaim = -Infinity;
      return entries;
    };

    /** One round: entries reclaimed from dead readers, or else new ones (blocking a while for them). */
    const pullInto = async (max: number, signal: AbortSignal, accept: (d: InboundDelivery) => void): Promise<void> => {
      const reclaimed = await reclaim(max);
      if (reclaimed.length > 0) {
        const first = reclaimed[0]?.id ?? '-';
        const last = reclaimed[reclaimed.length - 1]?.id ?? '+';
        const counts = parseDeliveryCounts(await redis.xpending(keys.stream, group, first, last, reclaimed.length + 1_000, reader));
        await dispatch(reclaimed, (id) => counts.get(id) ?? 2, accept);
        return;
      }
      if (signal.aborted) return;
      // Disconnecting is the only way to end a blocked XREADGROUP early; entries it had read stay pending for reclaim.
      const abort = (): void => blocking.disconnect();
      signal.addEventListener('abort', abort, { once: true });
      try {
        const reply = await blocking.call(
          'XREADGROUP',
          'GROUP',
          group,
          reader,
          'COUNT',
          max,
          'BLOCK',
          reclaimEveryMs,
          'STREAMS',
          keys.stream,
          '>',
        );
        if (signal.aborted) return;
        await dispatch(parseReadGroup(reply), () => 1, accept);
      } finally {
        signal.removeEventListener('abort', abort);
      }
    };

    let closing = false;
    const recreateEphemeral = async (): Promise<void> => {
      // A renewal still under way when the subscriber stopped must not bring back the group close() destroys.
      if (closing) return;
      await ensureEphemeralGroup(resolved);
      reclaimCursor = '0-0';
      onError(new Error(`ephemeral consumer '${group}' was removed while in use; recreated it, messages published meanwhile are missed`), {
        stage: 'pull',
        consumer: group,
      });
    };

    const subscription = startSubscription({
      options: resolved,
      handler,
      clock,
      onError,
      publish: (message) => bus.publish(message),
      source: {
        async pull(max, signal, accept) {
          try {
            await pullInto(max, signal, accept);
          } catch (error) {
            // The group was destroyed under a running subscriber: a sibling of an ephemeral consumer stopped,
            // or housekeeping took it for dead. Ephemeral: make it again; durable: a real fault, report it.
            if (signal.aborted || !resolved.ephemeral || !errorMessage(error).startsWith('NOGROUP')) throw error;
            await recreateEphemeral();
          }
        },
        async keepAlive() {
          if (!resolved.ephemeral) return;
          if (!(await touchEphemeralGroup(redis, keys, group, ephemeralTimeout(resolved, ephemeralTimeoutMs)))) {
            await recreateEphemeral();
          }
        },
        async close() {
          closing = true;
          // Wait for the socket to be gone, so a closed bus leaves no timer or handle behind.
          if (blocking.status !== 'end') {
            const ended = once(blocking, 'end');
            blocking.disconnect();
            await ended;
          }
          if (redis.status !== 'ready') return;
          if (!resolved.ephemeral) {
            await forgetReaderScript(redis, [keys.stream], [group, reader]);
            return;
          }
          await dropEphemeralGroup(redis, keys, group).catch((error: unknown) => onError(error, { stage: 'stop', consumer: group }));
        },
      },
    });
    return lifecycle.track(subscription);
  };

  /** Entries after the group's last delivered id whose subject the consumer's pattern matches. */
  const countUndelivered = async (group: string, pattern: string): Promise<number> => {
    const matches = compileSubjectPattern(pattern);
    let after = parseLastDeliveredId(await redis.call('XINFO', 'GROUPS', keys.stream), group);
    if (after === undefined) return 0;
    let count = 0;
    for (;;) {
      const entries = parseEntries(await redis.xrange(keys.stream, `(${after}`, '+', 'COUNT', LAG_SCAN_BATCH));
      for (const entry of entries) if (matches(entry.fields.get('s') ?? '')) count += 1;
      if (entries.length < LAG_SCAN_BATCH) return count;
      after = entries[entries.length - 1]?.id ?? after;
    }
  };

  const maintenance = startMaintenance({ redis, keys, intervalMs: maintenanceIntervalMs, maxAgeMs, clock, onError });

  const bus: EventBus = {
    kind: 'redis',
    async publish(outgoing) {
      lifecycle.assertOpen();
      const message = prepareMessage(outgoing);
      const fields: string[] = ['s', message.subject, 'i', message.id, 'h', JSON.stringify(message.headers), 'd', message.payload];
      if (message.key !== undefined) fields.push('k', message.key);
      // A nil reply means the id was stored within the dedup window already: success.
      await publishScript(redis, [keys.stream, keys.dedup(message.id)], [dedupWindowMs, ...fields]);
    },
    async subscribe(subscribeOptions, handler) {
      lifecycle.assertOpen();
      const resolved = resolveSubscribeOptions(subscribeOptions);
      // Each subscribe also clears out ephemeral groups whose processes died since the last housekeeping
      // pass (registering an ephemeral one does so itself).
      if (!resolved.ephemeral) await sweepEphemeralGroups(redis, keys);
      await ensureGroup(resolved);
      return openSubscription(resolved, handler);
    },
    async lag(consumer) {
      assertConsumerName(consumer);
      lifecycle.assertOpen();
      const pattern = await redis.hget(keys.consumers, consumer);
      if (pattern === null) return 0;
      const [pending] = (await redis.xpending(keys.stream, consumer)) as [number, ...unknown[]];
      return Number(pending) + (await countUndelivered(consumer, pattern));
    },
    async ping() {
      lifecycle.assertOpen();
      const started = performance.now();
      const timeout = new AbortController();
      try {
        await Promise.race([
          redis.ping(),
          clock.sleep(pingTimeoutMs, timeout.signal).then(
            () => {
              throw new Error(`Redis did not answer ping within ${pingTimeoutMs} ms`);
            },
            () => undefined, // aborted: ping answered first
          ),
        ]);
      } finally {
        timeout.abort();
      }
      return performance.now() - started;
    },
    close: () =>
      lifecycle.close(async () => {
        await maintenance.stop();
        await redis.quit();
      }),
  };
  return bus;
}
