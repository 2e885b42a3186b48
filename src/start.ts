import type { Config } from './platform/config/schema.ts';
import type { Logger } from './platform/logger.ts';
import { openPlatform } from './platform/open-platform.ts';
import type { Platform } from './platform/platform.ts';
import type { ServiceModule } from './platform/service-module.ts';
import { createHttpServer, type HttpServer } from './platform/http/create-http-server.ts';
import { createRateLimitHook } from './platform/http/rate-limit.ts';
import { loadTls } from './platform/http/tls.ts';
import { compileTransforms, transformsPlugin } from './platform/http/transforms.ts';
import { createAutonomousService } from './autonomous/index.ts';
import { createCollaborativeService } from './collaborative/index.ts';
import { createIdentityModule, createTokenModule, resolveKeyEncryptionKey, type IdentityModule } from './core/identity/index.ts';
import { serviceRoutes, upstreamChecks, upstreamRoutes, type Upstream } from './gateway/upstreams.ts';
import { createUpstreamPool } from './gateway/pool.ts';

export type Role = 'gateway' | 'autonomous' | 'collaborative';
export const ROLES: readonly Role[] = ['gateway', 'autonomous', 'collaborative'];

export interface StartOptions {
  readonly config: Config;
  /** Which services this process runs; all three for `blocks start`. */
  readonly roles: readonly Role[];
  readonly version: string;
  /** Listen on the configured ports (default) or on free ones (tests, benchmarks). */
  readonly ephemeralPorts?: boolean;
  /** Build the logger elsewhere (tests capture lines); a JSON logger to stdout otherwise. */
  readonly logger?: Logger;
}

export interface RunningBlocks {
  readonly platform: Platform;
  /** Base URL per running role. */
  readonly urls: Readonly<Partial<Record<Role, string>>>;
  readonly apps: Readonly<Partial<Record<Role, HttpServer>>>;
  /** Identity (tenants, API keys, OAuth clients), run by the gateway process. */
  readonly identity?: IdentityModule;
  /**
   * Graceful shutdown: stop accepting, finish in-flight requests, stop consumers, flush the
   * outbox, close connections. Safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * Starts the given roles in this process on one platform. The gateway mounts services that run
 * here in-process and proxies to the others at `services.<name>.url`.
 */
export async function startBlocks(options: StartOptions): Promise<RunningBlocks> {
  const { config, roles } = options;
  const processName = roles.length === ROLES.length ? 'all' : roles.join('+');
  // Read once, before anything opens: every port serves the same certificate, and a bad path stops the start here.
  const tls = loadTls(config.tls);
  const transforms = compileTransforms(config.gateway.transforms);
  const keyEncryptionKey = roles.includes('gateway')
    ? resolveKeyEncryptionKey({ configured: config.auth.key_encryption_key, env: config.env, dataDir: config.data_dir })
    : undefined;
  const platform = await openPlatform({ config, version: options.version, service: processName, logger: options.logger });
  let accepting = false;

  const modules: Partial<Record<'autonomous' | 'collaborative', ServiceModule>> = {};
  if (roles.includes('autonomous')) modules.autonomous = createAutonomousService(platform);
  if (roles.includes('collaborative')) modules.collaborative = createCollaborativeService(platform);
  const identity = roles.includes('gateway') ? createIdentityModule(platform) : undefined;
  const urls: Partial<Record<Role, string>> = {};
  const tokens =
    identity &&
    keyEncryptionKey &&
    createTokenModule({
      db: platform.db,
      clock: platform.clock,
      issuer: () => config.auth.issuer ?? (urls.gateway as string),
      audience: config.auth.audience,
      accessTokenTtlMs: config.auth.access_token_ttl,
      keyEncryptionKey,
      clients: { authenticate: (clientId, secret) => identity.authenticateClient(clientId, secret) },
    });

  const rateLimits = createRateLimitHook({
    limiter: platform.rateLimiter,
    config: config.rate_limits,
    logger: platform.logger,
    metrics: platform.metrics,
  });
  const apps: Partial<Record<Role, HttpServer>> = {};
  const started: ServiceModule[] = [];
  try {
    // Modules start before any port opens, so the first request finds their data seeded and consumers running.
    for (const module of Object.values(modules)) {
      await module.start();
      started.push(module);
    }
    await identity?.start();
    const upstreams = roles.includes('gateway') ? gatewayUpstreams(platform, modules) : [];
    for (const role of roles) {
      const app = await createHttpServer({
        name: role,
        version: options.version,
        logger: platform.logger.child({ role }),
        metrics: platform.metrics,
        bodyLimitBytes: config.http.body_limit_bytes,
        keepAliveTimeoutMs: config.http.keep_alive_timeout,
        checks: role === 'gateway' ? [...platform.checks, ...upstreamChecks(upstreams)] : platform.checks,
        logRequests: config.http.log_requests,
        accepting: () => accepting,
        rateLimits,
        ...(tls ? { tls } : {}),
        cors: config.http.cors,
        jsonMaxDepth: config.http.json_max_depth,
      });
      if (role === 'gateway') {
        // First, so that every gateway route, mounted or proxied, sees transformed requests.
        await app.register(transformsPlugin, { transforms });
        if (identity) await app.register(identity.routes, { prefix: '/api/v1/identity' });
        if (tokens) await app.register(tokens.routes);
        const { retry_idempotent: retryIdempotent, max_attempts: maxAttempts } = config.gateway.upstreams;
        await app.register(upstreamRoutes, { upstreams, retryIdempotent, maxAttempts, metrics: platform.metrics });
      } else {
        await app.register(serviceRoutes(modules[role] as ServiceModule));
      }
      const { host, port } = config.services[role];
      const address = await app.listen({ host, port: options.ephemeralPorts ? 0 : port });
      apps[role] = app;
      urls[role] = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
    }
    platform.relay.start();
  } catch (error) {
    await Promise.allSettled(Object.values(apps).map((app) => app.close()));
    await Promise.allSettled(started.map((module) => module.stop()));
    await identity?.stop().catch(() => undefined);
    await platform.close();
    throw error;
  }
  accepting = true;

  let closing: Promise<void> | undefined;
  return {
    platform,
    urls,
    apps,
    ...(identity ? { identity } : {}),
    close: () =>
      (closing ??= (async () => {
        accepting = false;
        await Promise.allSettled(Object.values(apps).map((app) => app.close()));
        await Promise.allSettled(Object.values(modules).map((module) => module.stop()));
        await identity?.stop().catch((error: unknown) => platform.logger.warn({ err: error }, 'stopping identity failed'));
        await platform.close();
      })()),
  };
}

/** Paths each service answers on, for a gateway that proxies to it over HTTP. */
const SERVICE_PREFIXES: Readonly<Record<'autonomous' | 'collaborative', readonly string[]>> = {
  autonomous: ['/api/v1/autonomous', '/v1'],
  collaborative: ['/api/v1/collaborative'],
};

function gatewayUpstreams(platform: Platform, local: Partial<Record<'autonomous' | 'collaborative', ServiceModule>>): Upstream[] {
  const { config } = platform;
  const settings = config.gateway.upstreams;
  return (['autonomous', 'collaborative'] as const).map((name): Upstream => {
    const service = local[name];
    if (service) return { kind: 'in-process', service };
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
  });
}
