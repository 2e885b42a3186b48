import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { Platform } from '../platform/platform.ts';
import type { DependencyCheck } from '../platform/http/health.ts';
import { defineModule, type ModuleManifest, type ProcessRole } from '../platform/modules/manifest.ts';
import type { ModuleRegistry } from '../platform/modules/registry.ts';
import { servicePrefixes, type RoutedService } from '../platform/modules/services.ts';
import { compileTransforms, transformsPlugin } from './transforms.ts';
import { webSocketLimitsOf } from '../platform/websocket/index.ts';
import { createUpstreamPool } from './pool.ts';
import { upstreamChecks, upstreamRoutes, type Upstream } from './upstreams.ts';
import { GATEWAY_CONFIG_SECTION, type GatewayConfig } from './config.ts';
import { gatewayErrors } from './errors.ts';

export { serviceRoutes } from './upstreams.ts';
export { gatewayErrors } from './errors.ts';
export { GATEWAY_CONFIG_SECTION, type GatewayConfig } from './config.ts';
export { compileTransforms, transformsPlugin } from './transforms.ts';

export interface Gateway {
  /** Health of the remote upstream pools, for the gateway's `/health`. */
  readonly checks: readonly DependencyCheck[];
  /** Transforms and the forwarding to services running elsewhere: register on the gateway's app first. */
  readonly routes: FastifyPluginAsync;
}

export interface GatewayOptions {
  readonly platform: Platform;
  readonly config: GatewayConfig;
  readonly registry: ModuleRegistry;
  /** Processes this one runs: their services are mounted here without a network hop; the others are forwarded to `services.<name>.url(s)`. */
  readonly roles: readonly ProcessRole[];
}

/**
 * The gateway (spec: "API Gateway"): per-route transforms, and the services, in process or behind
 * load-balanced upstream pools. The zero-trust decision itself runs in every process
 * (createHttpServer's access hook), so a service reached directly is as closed as through here.
 */
export const gatewayModule = defineModule({
  name: 'gateway',
  service: 'gateway',
  description: 'Gateway: request and response transforms, and routing to the services across their replicas',
  errors: [gatewayErrors],
  config: GATEWAY_CONFIG_SECTION,
  create({ platform, config, registry, roles }) {
    const gateway = createGateway({ platform, config, registry, roles });
    // At the root, not under /api/v1: the transforms' hooks must reach every route of the process.
    return { mounts: [{ prefix: '', routes: gateway.routes }], checks: gateway.checks };
  },
});

/** The gateway's modules (port 8000): one line each. */
export const gatewayModules: readonly ModuleManifest[] = [gatewayModule];

/**
 * @throws Error for a transform or an upstream that the configuration gets wrong, before anything listens.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const { platform, config, registry, roles } = options;
  const transforms = compileTransforms(config.transforms);
  const remote = (['autonomous', 'collaborative'] as const).filter((name) => !roles.includes(name));
  const upstreams = remote.map((name) => upstreamOf(platform, config, name, servicePrefixes(registry, name)));
  const { retry_idempotent: retryIdempotent, max_attempts: maxAttempts } = config.upstreams;
  return {
    checks: upstreamChecks(upstreams),
    // Not encapsulated: the transforms' hooks must reach the routes every process serves (health, metrics, docs) too.
    routes: fp(async (app) => {
      // First, so that every gateway route, mounted or proxied, sees transformed requests.
      await app.register(transformsPlugin, { transforms });
      await app.register(upstreamRoutes, {
        upstreams,
        retryIdempotent,
        maxAttempts,
        metrics: platform.metrics,
        webSocket: webSocketLimitsOf(platform.config.http.websocket),
      });
    }),
  };
}

function upstreamOf(platform: Platform, config: GatewayConfig, name: RoutedService, prefixes: readonly string[]): Upstream {
  const settings = config.upstreams;
  const { url, urls } = platform.config.services[name];
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
    recoveryTimeoutMs: platform.config.resilience.recovery_timeout,
    clock: platform.clock,
    logger: platform.logger,
  });
  return { kind: 'http', name, prefixes, pool };
}
