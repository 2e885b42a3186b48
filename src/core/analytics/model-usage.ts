import type { Platform } from '../../platform/platform.ts';
import type { Subscription } from '../../platform/bus/port.ts';
import type { SystemEvent } from '../../platform/events/types.ts';
import { handleOnce } from '../../platform/events/inbox.ts';
import { countDecision, listModelUsage } from './store.ts';

/** Durable consumer name: every replica shares the work, each event counts once. */
export const MODEL_USAGE_CONSUMER = 'analytics-model-usage';

interface DecisionPayload {
  readonly selected_model: string;
  readonly estimated_cost: number;
}

export interface ModelUsageCounter {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Counts routing decisions per model from `ai.route.decided` events. The inbox makes a
 * redelivered event count once; the totals live in the database, so /metrics on any replica
 * shows the same figures (`blocks_ai_model_decisions{model}`).
 */
export function createModelUsageCounter(platform: Platform, subject: string): ModelUsageCounter {
  const { bus, db, logger, metrics } = platform;
  let subscription: Subscription | undefined;

  metrics.gauge('blocks_ai_model_decisions', 'Routing decisions per model, counted from ai.route.decided events', ['model'], async (set) => {
    for (const usage of await listModelUsage(db)) set(usage.decisions, { model: usage.model });
  });
  metrics.gauge('blocks_ai_model_estimated_cost_usd', 'Estimated cost of routed requests per model, USD', ['model'], async (set) => {
    for (const usage of await listModelUsage(db)) set(usage.estimated_cost_usd, { model: usage.model });
  });

  return {
    async start() {
      subscription = await bus.subscribe({ consumer: MODEL_USAGE_CONSUMER, subject }, async (delivery) => {
        const event = delivery.data as SystemEvent;
        const payload = event.payload as unknown as DecisionPayload;
        const counted = await handleOnce(db, MODEL_USAGE_CONSUMER, event.event_id, (tx) =>
          countDecision(tx, payload.selected_model, payload.estimated_cost, event.timestamp),
        );
        logger.info(
          { correlation_id: event.correlation_id, event_id: event.event_id, model: payload.selected_model, duplicate: !counted },
          counted ? 'routing decision counted' : 'routing decision already counted',
        );
      });
    },
    async stop() {
      await subscription?.stop();
    },
  };
}
