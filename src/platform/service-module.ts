import type { FastifyPluginAsync } from 'fastify';
import type { Mount } from './modules/manifest.ts';

export type { Mount } from './modules/manifest.ts';

/**
 * A service (autonomous, collaborative) as the process runner and the gateway see it: its modules'
 * routes under its prefix, and their mounts (src/platform/modules/services.ts composes it from the
 * registry). The same instance is mounted on its own port and, in `blocks start`, inside the gateway.
 */
export interface ServiceModule {
  readonly name: 'autonomous' | 'collaborative';
  readonly prefix: string;
  readonly routes: FastifyPluginAsync;
  /** Route trees served outside `prefix` (the OpenAI-compatible `/v1`), wherever the service is. */
  readonly extraMounts?: readonly Mount[];
}
