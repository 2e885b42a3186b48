import type { FastifyPluginAsync } from 'fastify';

/**
 * A service (autonomous, collaborative) as the process runner sees it: routes to mount under a
 * prefix, and background work (bus consumers) to start once per process and stop on shutdown.
 * The same instance is mounted on its own port and, in `blocks start`, inside the gateway.
 */
export interface ServiceModule {
  readonly name: 'autonomous' | 'collaborative';
  readonly prefix: string;
  readonly routes: FastifyPluginAsync;
  /**
   * Route trees served outside `prefix`, such as the OpenAI-compatible `/v1` of the autonomous
   * service, whose clients expect that exact path. Mounted wherever the service is.
   */
  readonly extraMounts?: readonly Mount[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Routes registered under a path prefix. */
export interface Mount {
  readonly prefix: string;
  readonly routes: FastifyPluginAsync;
}
