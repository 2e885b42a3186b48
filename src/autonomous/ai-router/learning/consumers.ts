import { randomUUID } from 'node:crypto';
import type { Platform } from '../../../platform/platform.ts';
import type { AiConfig } from '../config.ts';
import type { Subscription } from '../../../platform/bus/port.ts';
import { createGroupCommit } from '../../../platform/group-commit.ts';
import type { LearningModelEstimates } from './estimates.ts';
import {
  callObservations,
  feedbackObservation,
  OUTCOME_RECORDED,
  parseCallEvent,
  parseRecordedOutcome,
  REQUEST_COMPLETED,
  REQUEST_FAILED,
} from './observations.ts';
import { proxyOutcomeOf, pruneOutcomes, storeProxyOutcomes, type ProxyOutcome } from './store.ts';
import { warmUpEstimates } from './warm-up.ts';

/** Durable consumer that stores proxied outcomes: replicas share the work, each event is stored once. */
export const PROXY_OUTCOMES_CONSUMER = 'ai-learning-proxy-outcomes';
const REQUEST_EVENTS = 'ai.request.*';
/** Warm-up replays this many half-lives: older evidence weighs less than 1/1000 of new. */
const WARM_UP_HALF_LIVES = 10;
const WARM_UP_MAX_ROWS = 200_000;
/**
 * Outcomes read per statement at warm-up. One statement for all of them held every row (with its
 * attempts) at once in PGlite's WASM memory, which never shrinks, in the worker's copy and in ours.
 */
const WARM_UP_PAGE_ROWS = 5_000;

export interface LearningConsumers {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps this replica's estimates current and the outcome table filled:
 * - per replica (ephemeral), every `ai.outcome.recorded` and `ai.request.*` event is recorded in the
 *   in-memory estimates of the tenant it names, so every replica routes each tenant on the same
 *   evidence, and no tenant on another's;
 * - shared (durable, with inbox), proxied calls become `ai_outcomes` rows with source `proxy`,
 *   in batches, for calibration and for warm-up;
 * - at start, estimates are warmed from the outcomes of the last ten half-lives, with their times
 *   and tenants, so a restarted replica remembers what the others know;
 * - every `retention.interval`, outcomes older than `ai.learning.outcome_retention` are deleted.
 */
export function createLearningConsumers(
  platform: Platform,
  estimates: LearningModelEstimates,
  learning: AiConfig['learning'],
): LearningConsumers {
  const { bus, db, logger, clock, config } = platform;
  const subscriptions: Subscription[] = [];
  let pruneTimer: NodeJS.Timeout | undefined;
  let pruning: Promise<void> | undefined;
  const prune = (): void => {
    const keepMs = learning.outcome_retention;
    pruning ??= pruneOutcomes(db, new Date(clock.now() - keepMs))
      .then(
        (deleted) => {
          if (deleted > 0) logger.info({ deleted }, 'pruned expired AI outcomes');
        },
        (error: unknown) => logger.warn({ err: error }, 'pruning expired AI outcomes failed; will retry'),
      )
      .finally(() => (pruning = undefined));
  };
  const batches = createGroupCommit<{ eventId: string; outcome: ProxyOutcome | null }, boolean>({
    maxBatch: 500,
    write: async (items) => {
      const outcomes = items.flatMap((item) => (item.outcome === null ? [] : [item.outcome]));
      const handled = items.flatMap((item) => (item.outcome === null ? [item.eventId] : []));
      const fresh = await storeProxyOutcomes(db, PROXY_OUTCOMES_CONSUMER, outcomes, handled);
      return items.map((item) => fresh.has(item.eventId));
    },
  });

  const isCallEvent = (subject: string): boolean => subject.endsWith(REQUEST_COMPLETED) || subject.endsWith(REQUEST_FAILED);

  const warmUp = (): Promise<number> =>
    warmUpEstimates(db, estimates, {
      since: new Date(clock.now() - WARM_UP_HALF_LIVES * learning.half_life),
      maxRows: WARM_UP_MAX_ROWS,
      pageSize: WARM_UP_PAGE_ROWS,
    });

  return {
    async start() {
      const suffix = randomUUID().slice(0, 8);
      // Subscribed before the warm-up reads, so nothing committed meanwhile is missed (a few may count twice).
      subscriptions.push(
        await bus.subscribe({ consumer: `ai-learn-calls-${suffix}`, subject: REQUEST_EVENTS, ephemeral: true }, async (delivery) => {
          if (!isCallEvent(delivery.subject)) return;
          try {
            for (const observation of callObservations(parseCallEvent(delivery.data))) estimates.record(observation);
          } catch (error) {
            // Retrying cannot fix a malformed event; the durable consumer dead-letters it where it can be seen.
            logger.warn({ err: error, event_id: delivery.id }, 'AI call event not learned from');
          }
        }),
        await bus.subscribe({ consumer: `ai-learn-outcomes-${suffix}`, subject: OUTCOME_RECORDED, ephemeral: true }, async (delivery) => {
          try {
            estimates.record(feedbackObservation(parseRecordedOutcome(delivery.data)));
          } catch (error) {
            logger.warn({ err: error, event_id: delivery.id }, 'AI outcome event not learned from');
          }
        }),
        await bus.subscribe({ consumer: PROXY_OUTCOMES_CONSUMER, subject: REQUEST_EVENTS, concurrency: 64 }, async (delivery) => {
          if (!isCallEvent(delivery.subject)) return;
          const event = parseCallEvent(delivery.data);
          const outcome = proxyOutcomeOf(event, randomUUID());
          const stored = await batches.submit({ eventId: event.event_id, outcome });
          logger.debug({ event_id: event.event_id, request_id: event.request_id, duplicate: !stored }, 'proxied outcome stored');
        }),
      );
      if (learning.outcome_retention > 0 && config.retention.interval > 0) {
        pruneTimer = setInterval(prune, config.retention.interval);
        pruneTimer.unref();
      }
      const replayed = await warmUp();
      logger.info({ outcomes: replayed, entries: estimates.size }, 'AI estimates warmed up from recorded outcomes');
    },
    async stop() {
      clearInterval(pruneTimer);
      pruneTimer = undefined;
      await pruning;
      await Promise.all(subscriptions.splice(0).map((subscription) => subscription.stop()));
      await batches.drain();
    },
  };
}
