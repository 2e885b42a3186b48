import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../../../platform/platform.ts';
import type { AiConfig } from '../config.ts';
import type { ModelCatalog } from '../catalog.ts';
import { createLearningConsumers } from './consumers.ts';
import type { LearningModelEstimates } from './estimates.ts';
import { learningRoutes } from './routes.ts';
import { createLearningService, type LearningService } from './service.ts';

export { createModelEstimates } from './estimates.ts';
export type {
  LearningModelEstimates,
  LearningTenantEstimates,
  ModelEstimate,
  ModelEstimates,
  Observation,
  TenantEstimates,
} from './estimates.ts';
export { learningErrors } from './errors.ts';
export { OUTCOME_RECORDED, REQUEST_COMPLETED, REQUEST_FAILED } from './observations.ts';
export { PROXY_OUTCOMES_CONSUMER } from './consumers.ts';

export interface Learning {
  readonly service: LearningService;
  /** `/feedback` and `/stats`; mount under `/api/v1/autonomous/ai`. */
  readonly routes: FastifyPluginAsync;
  /** Follows outcome events (this replica's estimates, the shared outcome table) and warms the estimates. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The router's learning part: feedback and stats routes, and the consumers that feed `estimates`
 * (the one instance the module's deciders read) from every replica's outcomes.
 */
export function createLearning(
  platform: Platform,
  estimates: LearningModelEstimates,
  options: { loadCatalog: () => Promise<ModelCatalog | null>; learning: AiConfig['learning'] },
): Learning {
  const service = createLearningService({
    db: platform.db,
    estimates,
    loadCatalog: options.loadCatalog,
    now: () => platform.clock.now(),
    onEventAppended: () => platform.relay.notify(),
  });
  const consumers = createLearningConsumers(platform, estimates, options.learning);
  return {
    service,
    routes: async (app) => {
      await app.register(learningRoutes, { service });
    },
    start: () => consumers.start(),
    stop: () => consumers.stop(),
  };
}
