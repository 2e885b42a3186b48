import type { Config } from './platform/config/schema.ts';
import type { Logger } from './platform/logger.ts';
import { openPlatform } from './platform/open-platform.ts';
import type { Platform } from './platform/platform.ts';
import type { ServiceModule } from './platform/service-module.ts';
import { createHttpServer, type HttpServer } from './platform/http/create-http-server.ts';
import { createRateLimitHook } from './platform/http/rate-limit.ts';
import { loadTls } from './platform/http/tls.ts';
import { createIdempotencySweep, idempotencyPlugin } from './platform/idempotency/index.ts';
import { webSocketOptionsOf } from './platform/websocket/index.ts';
import type { ModuleManifest, ProcessRole, ServiceClients } from './platform/modules/manifest.ts';
import { createAutonomousClient, type ServiceTransport } from './platform/clients/autonomous-client.ts';
import { httpTransport, inProcessTransport } from './platform/clients/transports.ts';
import { createServiceToken } from './platform/clients/service-token.ts';
import { serviceCredentialsOf } from './platform/clients/service-credentials.ts';
import type { ModuleRegistry } from './platform/modules/registry.ts';
import { createProcessModules, type ProcessModules, type RunningModule } from './platform/modules/runtime.ts';
import { composeService, type RoutedService } from './platform/modules/services.ts';
import { taggedRoutes } from './platform/modules/tagged-routes.ts';
import { identityModule, resolveKeyEncryptionKey, type IdentityApi } from './core/identity/index.ts';
import { serviceRoutes } from './gateway/index.ts';
import { createRegistry } from './modules.ts';

export type Role = ProcessRole;
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
  /** The modules to run; the built-in ones (src/modules.ts) when absent. */
  readonly registry?: ModuleRegistry;
}

export interface RunningBlocks {
  readonly platform: Platform;
  /** Base URL per running role. */
  readonly urls: Readonly<Partial<Record<Role, string>>>;
  readonly apps: Readonly<Partial<Record<Role, HttpServer>>>;
  /** Identity (tenants, API keys, OAuth clients) and the access decision, in every process; its admin API on the gateway. */
  readonly identity: IdentityApi;
  /** The modules this process runs. */
  readonly modules: ProcessModules;
  readonly registry: ModuleRegistry;
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
  const registry = options.registry ?? createRegistry();
  const processName = roles.length === ROLES.length ? 'all' : roles.join('+');
  // Read once, before anything opens: every port serves the same certificate, and a bad path stops the start here.
  const tls = loadTls(config.tls);
  // A service guessing the gateway's URL wrong would refuse every token with a 401 and no other sign.
  if (config.env === 'production' && !roles.includes('gateway') && !config.auth.issuer && !config.services.gateway.url) {
    throw new Error(
      'auth.issuer (the gateway URL tokens name as iss) or services.gateway.url must be set for a service running without the gateway',
    );
  }
  const platform = await openPlatform({
    config,
    version: options.version,
    service: processName,
    logger: options.logger,
    migrations: registry.migrations,
  });
  let accepting = false;
  const urls: Partial<Record<Role, string>> = {};
  const publicUrl = (role: Role): string =>
    urls[role] ?? config.services[role].url ?? `${tls ? 'https' : 'http'}://127.0.0.1:${config.services[role].port}`;

  const apps: Partial<Record<Role, HttpServer>> = {};
  let modules: ProcessModules;
  try {
    modules = createProcessModules({
      registry,
      platform,
      roles,
      publicUrl,
      clients: serviceClients(config, roles, platform, apps, publicUrl),
    });
  } catch (error) {
    // A module refusing its configuration (a bad catalog, a missing key) leaves nothing open.
    await platform.close();
    throw error;
  }
  const identity = modules.use(identityModule);
  const services: Partial<Record<RoutedService, ServiceModule>> = {};
  for (const name of ['autonomous', 'collaborative'] as const) {
    if (roles.includes(name))
      services[name] = composeService({ name, registry, modules, version: options.version, settings: serviceSettings(config, name) });
  }

  const rateLimits = createRateLimitHook({
    limiter: platform.rateLimiter,
    config: config.rate_limits,
    logger: platform.logger,
    metrics: platform.metrics,
  });
  const idempotency = platform.idempotency;
  const idempotencySweep = createIdempotencySweep({ store: idempotency, intervalMs: config.retention.interval, logger: platform.logger });
  try {
    // Modules start before any port opens, so the first request finds their data seeded and consumers running.
    await modules.start();
    for (const role of roles) {
      // The gateway serves the core modules' APIs; each service, its own modules'.
      const served = modules.modules.filter((module) =>
        role === 'gateway' ? module.manifest.service === 'gateway' || module.manifest.service === 'core' : module.manifest.service === role,
      );
      const app = await createHttpServer({
        name: role,
        version: options.version,
        logger: platform.logger.child({ role }),
        metrics: platform.metrics,
        bodyLimitBytes: config.http.body_limit_bytes,
        keepAliveTimeoutMs: config.http.keep_alive_timeout,
        checks: [...platform.checks, ...served.flatMap((module) => module.instance.checks ?? [])],
        logRequests: config.http.log_requests,
        accepting: () => accepting,
        access: identity.access,
        anonymous: config.auth.anonymous,
        rateLimits,
        ...(tls ? { tls } : {}),
        cors: config.http.cors,
        jsonMaxDepth: config.http.json_max_depth,
        trustedProxies: config.http.trusted_proxies,
        webSocket: webSocketOptionsOf(config.http.websocket, platform),
        knownScopes: registry.scopes.known,
        tags: registry.tags.filter((tag) => servedModules(role, registry).some((manifest) => manifest.name === tag.name)),
      });
      // Before the routes, so its hooks cover each of them.
      await app.register(idempotencyPlugin, { store: idempotency, logger: platform.logger });
      if (role === 'gateway') {
        // Gateway modules first: their transforms reach every route registered after them.
        for (const module of served.filter((m) => m.manifest.service === 'gateway')) await mountModule(app, registry, module);
        for (const module of served.filter((m) => m.manifest.service === 'core')) await mountModule(app, registry, module);
        for (const service of Object.values(services)) await app.register(serviceRoutes(service));
      } else {
        await app.register(serviceRoutes(services[role] as ServiceModule));
      }
      const { host = config.http.host, port } = config.services[role];
      const address = await app.listen({ host, port: options.ephemeralPorts ? 0 : port });
      apps[role] = app;
      urls[role] = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
    }
    platform.relay.start();
    idempotencySweep.start();
  } catch (error) {
    await Promise.allSettled(Object.values(apps).map((app) => app.close()));
    await modules.stop();
    await platform.close();
    throw error;
  }
  accepting = true;

  let closing: Promise<void> | undefined;
  return {
    platform,
    urls,
    apps,
    identity,
    modules,
    registry,
    close: () =>
      (closing ??= (async () => {
        accepting = false;
        idempotencySweep.stop();
        await Promise.allSettled(Object.values(apps).map((app) => app.close()));
        await modules.stop();
        await platform.close();
      })()),
  };
}

/**
 * A core or gateway module's routes under its prefix, tagged with the module's name, and its mounts
 * as they are: a mount may be a plugin whose hooks must reach the whole app (the gateway's transforms).
 */
async function mountModule(app: HttpServer, registry: ModuleRegistry, module: RunningModule): Promise<void> {
  const { manifest, instance } = module;
  if (instance.routes) await app.register(taggedRoutes(manifest.name, instance.routes), { prefix: registry.prefixOf(manifest) });
  for (const mount of instance.mounts ?? []) await app.register(mount.routes, { prefix: mount.prefix });
}

/** The modules whose routes an app of `role` serves, whether they run here or not. */
function servedModules(role: Role, registry: ModuleRegistry): ModuleManifest[] {
  return role === 'gateway' ? [...registry.ofService('gateway'), ...registry.ofService('core')] : registry.ofService(role);
}

/**
 * The client ports a module calls other services through, as this process' service identity
 * acting for its caller: into this process' own app where the service runs here, else to its
 * `services.<name>.url(s)`; the identity's token comes from the gateway the same way.
 */
function serviceClients(
  config: Config,
  roles: readonly Role[],
  platform: Platform,
  apps: Partial<Record<Role, HttpServer>>,
  publicUrl: (role: Role) => string,
): ServiceClients {
  const transportTo = (role: Role): ServiceTransport => {
    if (roles.includes(role)) {
      return inProcessTransport(() => {
        const app = apps[role];
        if (app === undefined) throw new Error(`the ${role} app of this process is not started yet`);
        return app;
      });
    }
    const { url, urls } = config.services[role];
    return httpTransport(urls ?? [url ?? publicUrl(role)]);
  };
  // Read when first needed: a process that never calls another needs no key.
  let token: ((options?: { renew?: boolean }) => Promise<string>) | undefined;
  const tokenOf = (options?: { renew?: boolean }): Promise<string> => {
    token ??= createServiceToken({
      credentials: serviceCredentialsOf(
        resolveKeyEncryptionKey({ configured: config.auth.key_encryption_key, env: config.env, dataDir: config.data_dir }),
        'collaborative',
      ),
      gateway: transportTo('gateway'),
      clock: platform.clock,
    });
    return token(options);
  };
  return { autonomous: createAutonomousClient({ transport: transportTo('autonomous'), token: tokenOf }) };
}

/** The spec's per-service tuning values (`<service>_blocks.config`), shown by the service info route. */
export function serviceSettings(config: Config, service: RoutedService): Record<string, number> {
  if (service === 'autonomous') {
    const { ai_router_timeout, error_retry_attempts } = config.autonomous_blocks.config;
    return { ai_router_timeout_ms: ai_router_timeout, error_retry_attempts };
  }
  const { workflow_timeout, sync_batch_size } = config.collaborative_blocks.config;
  return { workflow_timeout_ms: workflow_timeout, sync_batch_size };
}
