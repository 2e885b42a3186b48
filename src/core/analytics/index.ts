export { createModelUsageCounter, MODEL_USAGE_CONSUMER } from './model-usage.ts';
export type { ModelUsageCounter } from './model-usage.ts';
export { listModelUsage } from './store.ts';
export type { ModelUsage } from './store.ts';
