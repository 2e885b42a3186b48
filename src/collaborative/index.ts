import type { Platform } from '../platform/platform.ts';
import type { ServiceModule } from '../platform/service-module.ts';
import { serviceInfoRoute } from '../platform/http/service-info.ts';

/** The collaborative service (port 8002). MCP, sync, protocol and workflows mount here as they land. */
export function createCollaborativeService(platform: Platform): ServiceModule {
  const { workflow_timeout, sync_batch_size } = platform.config.collaborative_blocks.config;
  return {
    name: 'collaborative',
    prefix: '/api/v1/collaborative',
    routes: async (app) => {
      await app.register(serviceInfoRoute, {
        service: 'collaborative',
        version: platform.version,
        modules: [],
        settings: { workflow_timeout_ms: workflow_timeout, sync_batch_size },
      });
    },
    start: async () => undefined,
    stop: async () => undefined,
  };
}
