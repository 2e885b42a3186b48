import type { Platform } from '../platform/platform.ts';
import type { ServiceModule } from '../platform/service-module.ts';
import { createAiRouterModule, ROUTE_DECIDED } from './ai-router/index.ts';
import { createModelUsageCounter } from '../core/analytics/index.ts';
import { serviceInfoRoute } from '../platform/http/service-info.ts';

/** The autonomous service (port 8001): the AI router now; errors, performance and security follow. */
export function createAutonomousService(platform: Platform): ServiceModule {
  const aiRouter = createAiRouterModule(platform);
  const usage = createModelUsageCounter(platform, ROUTE_DECIDED);
  const { ai_router_timeout, error_retry_attempts } = platform.config.autonomous_blocks.config;
  return {
    name: 'autonomous',
    prefix: '/api/v1/autonomous',
    // OpenAI-compatible clients expect `/v1/chat/completions` at the root, not under the service prefix.
    extraMounts: [{ prefix: '/v1', routes: aiRouter.proxy.routes }],
    routes: async (app) => {
      await app.register(serviceInfoRoute, {
        service: 'autonomous',
        version: platform.version,
        modules: ['ai'],
        settings: { ai_router_timeout_ms: ai_router_timeout, error_retry_attempts },
      });
      await app.register(aiRouter.routes, { prefix: '/ai' });
    },
    async start() {
      await aiRouter.start();
      await usage.start();
    },
    async stop() {
      await usage.stop();
      await aiRouter.stop();
    },
  };
}
