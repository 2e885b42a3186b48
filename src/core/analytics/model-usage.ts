import type { Platform } from '../../platform/platform.ts';
import type { Subscription } from '../../platform/bus/port.ts';
import { isSystemEvent } from '../../platform/events/index.ts';
import { createGroupCommit } from '../../platform/group-commit.ts';
import { countDecisions, listModelUsage, type CountedDecision, type ModelUsage } from './store.ts';

/** Durable consumer name: every replica shares the work, each event counts once. */
export const MODEL_USAGE_CONSUMER = 'analytics-model-usage';

/** Deliveries handled at once: they are counted in one statement, so more in flight means fewer writes. */
const CONCURRENCY = 64;

export interface ModelUsageCounter {
  start(): Promise<void>;
  stop(): Promise<void>;
}

function decisionOf(data: unknown): CountedDecision {
  if (!isSystemEvent(data)) throw new Error('not a SystemEvent');
  const { selected_model: model, estimated_cost: cost } = data.payload as { selected_model?: unknown; estimated_cost?: unknown };
  if (typeof model !== 'string' || typeof cost !== 'number')
    throw new Error(`event ${data.event_id} has no selected_model / estimated_cost`);
  return { event_id: data.event_id, model, estimated_cost: cost, decided_at: data.timestamp };
}

/**
 * Counts routing decisions per model from `ai.route.decided` events. The inbox makes a
 * redelivered event count once; the totals live in the database, so /metrics on any replica
 * shows the same figures (`blocks_ai_model_decisions{model}`). Deliveries that arrive together
 * are counted in one statement; each is acked only after its batch committed.
 */
export function createModelUsageCounter(platform: Platform, subject: string): ModelUsageCounter {
  const { bus, db, logger, metrics } = platform;
  let subscription: Subscription | undefined;
  const batches = createGroupCommit<CountedDecision, boolean>({
    maxBatch: 500,
    write: async (decisions) => {
      const fresh = await countDecisions(db, MODEL_USAGE_CONSUMER, decisions);
      return decisions.map((d) => fresh.has(d.event_id));
    },
  });

  // Both gauges are collected by the same scrape: they share one query while it is in flight.
  let reading: Promise<ModelUsage[]> | undefined;
  const readUsage = (): Promise<ModelUsage[]> => (reading ??= listModelUsage(db).finally(() => (reading = undefined)));
  metrics.gauge(
    'blocks_ai_model_decisions',
    'Routing decisions per model, counted from ai.route.decided events',
    ['model'],
    async (set) => {
      for (const usage of await readUsage()) set(usage.decisions, { model: usage.model });
    },
  );
  metrics.gauge('blocks_ai_model_estimated_cost_usd', 'Estimated cost of routed requests per model, USD', ['model'], async (set) => {
    for (const usage of await readUsage()) set(usage.estimated_cost_usd, { model: usage.model });
  });

  return {
    async start() {
      subscription = await bus.subscribe({ consumer: MODEL_USAGE_CONSUMER, subject, concurrency: CONCURRENCY }, async (delivery) => {
        const decision = decisionOf(delivery.data);
        const counted = await batches.submit(decision);
        logger.info(
          {
            correlation_id: (delivery.data as { correlation_id: string }).correlation_id,
            event_id: decision.event_id,
            model: decision.model,
            duplicate: !counted,
          },
          counted ? 'routing decision counted' : 'routing decision already counted',
        );
      });
    },
    async stop() {
      await subscription?.stop();
      await batches.drain();
    },
  };
}
