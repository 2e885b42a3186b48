import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Platform } from '../platform/platform.ts';
import type { ServiceModule } from '../platform/service-module.ts';
import type { DependencyCheck } from '../platform/http/health.ts';
import { compileTransforms, transformsPlugin } from '../platform/http/transforms.ts';
import type { IdentityModule, TokenModule } from '../core/identity/index.ts';
import { createUpstreamPool } from './pool.ts';
import { upstreamChecks, upstreamRoutes, type Upstream } from './upstreams.ts';

export { serviceRoutes } from './upstreams.ts';
export { gatewayErrors } from './errors.ts';

export type ServiceName = 'autonomous' | 'collaborative';

/** Paths each service answers on, for a gateway that proxies to it over HTTP. */
const SERVICE_PREFIXES: Readonly<Record<ServiceName, readonly string[]>> = {
  autonomous: ['/api/v1/autonomous', '/v1'],
  collaborative: ['/api/v1/collaborative'],
};

export interface Gateway {
  /** Health of the remote upstream pools, for the gateway's `/health`. */
  readonly checks: readonly DependencyCheck[];
  /** Everything the gateway serves besides what every process does: register on its app. */
  readonly routes: FastifyPluginAsync;
}

export interface GatewayOptions {
  readonly platform: Platform;
  /** Services running in this process: mounted without a network hop. The others are proxied to `services.<name>.url(s)`. */
  readonly local: Partial<Record<ServiceName, ServiceModule>>;
  readonly identity: IdentityModule;
  /** Blocks' own authorization server; absent without a key-encryption key. */
  readonly tokens?: TokenModule | undefined;
}

/**
 * The gateway: transforms, the identity admin API, the authorization server, and the services,
 * in process or behind load-balanced upstream pools. The zero-trust decision itself runs in every
 * process (createHttpServer's access hook), so a service reached directly is as closed as through here.
 *
 * @throws Error for a transform or an upstream that the configuration gets wrong, before anything listens.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { platform, identity, tokens } = options;
  const { config } = platform;
  const transforms = compileTransforms(config.gateway.transforms);
  const upstreams = (['autonomous', 'collaborative'] as const).map((name) => upstreamOf(platform, name, options.local[name]));
  const { retry_idempotent: retryIdempotent, max_attempts: maxAttempts } = config.gateway.upstreams;
  return {
    checks: upstreamChecks(upstreams),
    // Not encapsulated: the transforms' hooks must reach the routes every process serves (health, metrics, docs) too.
    routes: fp(async (app) => {
      // First, so that every gateway route, mounted or proxied, sees transformed requests.
      await app.register(transformsPlugin, { transforms });
      await app.register(identity.routes, { prefix: '/api/v1/identity' });
      if (tokens) await app.register(tokens.routes);
      await app.register(upstreamRoutes, { upstreams, retryIdempotent, maxAttempts, metrics: platform.metrics });
    }),
  };
}

function upstreamOf(platform: Platform, name: ServiceName, local: ServiceModule | undefined): Upstream {
  if (local) return { kind: 'in-process', service: local };
  const { config } = platform;
  const settings = config.gateway.upstreams;
  const { url, urls } = config.services[name];
  const members = urls ?? (url ? [url] : []);
  if (members.length === 0) throw new Error(`services.${name}.url or .urls must be set for a gateway that does not run ${name} itself`);
  const pool = createUpstreamPool({
    service: name,
    urls: members,
    balancing: settings.balancing,
    healthCheck: {
      path: settings.health_check.path,
      intervalMs: settings.health_check.interval,
      timeoutMs: settings.health_check.timeout,
      healthyThreshold: settings.health_check.healthy_threshold,
      unhealthyThreshold: settings.health_check.unhealthy_threshold,
    },
    passive: { failures: settings.passive.failures, ejectionMs: settings.passive.ejection },
    breakers: platform.breakers,
    recoveryTimeoutMs: config.resilience.recovery_timeout,
    clock: platform.clock,
    logger: platform.logger,
  });
  return { kind: 'http', name, prefixes: SERVICE_PREFIXES[name], pool };
}
