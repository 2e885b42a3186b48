import { fileURLToPath } from 'node:url';
import { defineModule } from '../../platform/modules/manifest.ts';
import { createModelUsageCounter } from './model-usage.ts';

export { createModelUsageCounter, MODEL_USAGE_CONSUMER } from './model-usage.ts';
export type { ModelUsageCounter } from './model-usage.ts';
export { listModelUsage } from './store.ts';
export type { ModelUsage } from './store.ts';

/**
 * The AI router's decision event (`ROUTE_DECIDED` of src/autonomous/ai-router): named here rather
 * than imported, since core/ does not reach into a service; test/core/analytics checks they agree.
 */
export const ROUTE_DECIDED_SUBJECT = 'ai.route.decided';

/** Analytics: routing decisions counted per model from events, for /metrics on every replica. */
export const analyticsModule = defineModule({
  name: 'analytics',
  // Runs beside the router whose decisions it counts.
  service: 'autonomous',
  description: 'Analytics: routing decisions and estimated cost per model, counted from events',
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  create({ platform }) {
    const usage = createModelUsageCounter(platform, ROUTE_DECIDED_SUBJECT);
    return { start: () => usage.start(), stop: () => usage.stop() };
  },
});
