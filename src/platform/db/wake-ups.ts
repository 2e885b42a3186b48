/**
 * Wake-ups (LISTEN/NOTIFY) as both database adapters deliver them: handlers registered per channel,
 * each run coalesced so a burst of notifications costs one run, not one per notification. The
 * adapters own the connection that receives notifications; this module owns who is told, and when.
 */

import type { Logger } from '../logger.ts';

/** What a handler is woken with. */
export interface WakeUp {
  /** Payloads of the notifications this run covers, oldest first (at most {@link MAX_PAYLOADS_PER_RUN}). */
  readonly payloads: readonly string[];
  /**
   * Notifications may have been lost before this run (the listening connection was down, or more
   * arrived than `payloads` holds): re-check everything the channel stands for, not only `payloads`.
   */
  readonly missed: boolean;
}

/**
 * Called after notifications on its channel. Runs of one handler never overlap: notifications that
 * arrive while it runs are collected into one follow-up run. A handler that throws is reported to
 * the adapter's logger and still woken by later notifications.
 */
export type WakeUpHandler = (wakeUp: WakeUp) => void | Promise<void>;

/** One registration of a handler; `stop()` ends it. */
export interface Listening {
  /** No run of this handler starts after this is called; the channel is unlistened when no handler is left. */
  stop(): Promise<void>;
}

/**
 * Where a handler's failure goes: the adapter's logger, or a process warning when it has none, so a
 * failing handler is never silent.
 */
export const reportWakeUpError =
  (logger: Pick<Logger, 'warn'> | undefined) =>
  (error: unknown, context: { channel: string }): void => {
    if (logger !== undefined) logger.warn({ err: error, ...context }, 'database wake-up handler failed');
    else
      process.emitWarning(
        `database wake-up handler on '${context.channel}' failed: ${error instanceof Error ? error.message : String(error)}`,
      );
  };

/** Beyond this many payloads per run the rest are dropped and the run says `missed`. */
export const MAX_PAYLOADS_PER_RUN = 1_000;

/** A channel name: an identifier PostgreSQL needs no quoting for, so it can never carry SQL. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/** A channel name that is not `[a-z_][a-z0-9_]*` (at most 63 characters). Raised before anything is sent. */
export class InvalidChannelError extends Error {
  constructor(channel: string) {
    super(`channel '${channel}' must be a lower-case identifier: [a-z_][a-z0-9_]*, at most 63 characters`);
    this.name = 'InvalidChannelError';
  }
}

export function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new InvalidChannelError(channel);
}

/** The one statement both adapters notify with, inside a transaction or not. */
export const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

interface Runner {
  wake(payload: string | undefined, missed: boolean): void;
  stop(): void;
}

/**
 * Runs `handler` for wake-ups, one run at a time. The first wake-up of a burst starts a run one
 * turn of the event loop later, so notifications read from the same socket chunk (one burst of
 * commits) share it; wake-ups during a run are collected into exactly one follow-up run.
 */
function createRunner(handler: WakeUpHandler, onError: (error: unknown) => void): Runner {
  let payloads: string[] = [];
  let missed = false;
  let due = false;
  let running = false;
  let stopped = false;

  const runOnce = async (): Promise<void> => {
    const wakeUp: WakeUp = { payloads, missed };
    payloads = [];
    missed = false;
    due = false;
    try {
      await handler(wakeUp);
    } catch (error) {
      onError(error);
    }
  };

  const loop = async (): Promise<void> => {
    running = true;
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (due && !stopped) await runOnce();
    running = false;
  };

  return {
    wake(payload, lost) {
      if (stopped) return;
      if (payload !== undefined) {
        if (payloads.length < MAX_PAYLOADS_PER_RUN) payloads.push(payload);
        else missed = true;
      }
      missed ||= lost;
      due = true;
      if (!running) void loop();
    },
    stop() {
      stopped = true;
    },
  };
}

/** Who is listening to what, for one database handle. */
export interface WakeUpHub {
  /**
   * Registers `handler` on `channel`. `subscribe(channel)` is called when the channel gets its first
   * handler (the adapter sends LISTEN); if it throws, nothing stays registered and the error is rethrown.
   */
  listen(channel: string, handler: WakeUpHandler): Promise<Listening>;
  /** A notification arrived on `channel`. */
  deliver(channel: string, payload: string): void;
  /** Notifications may have been lost (a reconnect): every handler runs once with `missed`. */
  deliverMissed(): void;
  /** Channels that have at least one handler. */
  channels(): string[];
  /** Stops every handler (the database is closing). */
  stopAll(): void;
}

export interface WakeUpHubOptions {
  /** Starts receiving `channel` (LISTEN). */
  readonly subscribe: (channel: string) => Promise<void>;
  /** Stops receiving `channel` (UNLISTEN); a failure is reported, not thrown. */
  readonly unsubscribe: (channel: string) => Promise<void>;
  /** Where a handler's error, or a failed unsubscribe, is reported. */
  readonly onError: (error: unknown, context: { channel: string }) => void;
}

export function createWakeUpHub(options: WakeUpHubOptions): WakeUpHub {
  const byChannel = new Map<string, Set<Runner>>();
  // A LISTEN in flight per channel: a second listener waits for it rather than sending its own.
  const subscribing = new Map<string, Promise<void>>();

  const remove = async (channel: string, runner: Runner): Promise<void> => {
    runner.stop();
    const runners = byChannel.get(channel);
    if (runners === undefined || !runners.delete(runner) || runners.size > 0) return;
    byChannel.delete(channel);
    await options.unsubscribe(channel).catch((error: unknown) => options.onError(error, { channel }));
  };

  return {
    async listen(channel, handler) {
      assertChannel(channel);
      const runner = createRunner(handler, (error) => options.onError(error, { channel }));
      let runners = byChannel.get(channel);
      const first = runners === undefined;
      if (runners === undefined) {
        runners = new Set();
        byChannel.set(channel, runners);
      }
      runners.add(runner);
      try {
        let pending = subscribing.get(channel);
        if (first || pending !== undefined) {
          pending ??= options.subscribe(channel).finally(() => subscribing.delete(channel));
          subscribing.set(channel, pending);
          await pending;
        }
      } catch (error) {
        runner.stop();
        runners.delete(runner);
        if (runners.size === 0 && byChannel.get(channel) === runners) byChannel.delete(channel);
        throw error;
      }
      let stopped: Promise<void> | undefined;
      return { stop: () => (stopped ??= remove(channel, runner)) };
    },
    deliver(channel, payload) {
      for (const runner of byChannel.get(channel) ?? []) runner.wake(payload, false);
    },
    deliverMissed() {
      for (const runners of byChannel.values()) for (const runner of runners) runner.wake(undefined, true);
    },
    channels: () => [...byChannel.keys()],
    stopAll() {
      for (const runners of byChannel.values()) for (const runner of runners) runner.stop();
      byChannel.clear();
    },
  };
}
