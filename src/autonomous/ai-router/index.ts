import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../../platform/platform.ts';
import { loadModelCatalog } from './catalog.ts';
import { createTokenizer } from './tokenizer.ts';
import { createRouteDecider } from './decide.ts';
import { createAiRouterService, type AiRouterService } from './service.ts';
import { aiRouterRoutes } from './routes.ts';

export { ROUTE_DECIDED } from './service.ts';
export type { RoutedDecision } from './service.ts';
export { aiRouterErrors } from './errors.ts';

export interface AiRouterModule {
  readonly service: AiRouterService;
  /** Registers `/route` and friends; mount under `/api/v1/autonomous/ai`. */
  readonly routes: FastifyPluginAsync;
}

/**
 * Wires the AI router from the platform: the catalog file named by `ai.catalog_file`, one
 * tokenizer (its rank table is loaded now, not on the first request), and the decider.
 */
export function createAiRouterModule(platform: Platform): AiRouterModule {
  const { config } = platform;
  const catalog = loadModelCatalog(parseYaml(readFileSync(config.ai.catalog_file, 'utf8')));
  const tokenizer = createTokenizer();
  tokenizer.warmUp();
  const decider = createRouteDecider({ catalog, tokenizer, expectedOutputTokens: config.ai.expected_output_tokens });
  const service = createAiRouterService({
    decider,
    db: platform.db,
    onEventAppended: () => platform.relay.notify(),
    retryAttempts: config.autonomous_blocks.config.error_retry_attempts,
  });
  const timeoutMs = config.autonomous_blocks.config.ai_router_timeout;
  return {
    service,
    routes: async (app) => {
      await app.register(aiRouterRoutes, { service, timeoutMs });
    },
  };
}
