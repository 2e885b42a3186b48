import type { Config } from './platform/config/schema.ts';
import type { Logger } from './platform/logger.ts';
import { openPlatform } from './platform/open-platform.ts';
import type { Platform } from './platform/platform.ts';
import type { ServiceModule } from './platform/service-module.ts';
import { createHttpServer, type HttpServer } from './platform/http/create-http-server.ts';
import { createRateLimitHook } from './platform/http/rate-limit.ts';
import { loadTls } from './platform/http/tls.ts';
import { createIdempotencySweep, idempotencyPlugin } from './platform/idempotency/index.ts';
import { createAutonomousService } from './autonomous/index.ts';
import { createCollaborativeService } from './collaborative/index.ts';
import { createIdentityModule, createTokenModule, resolveKeyEncryptionKey, type IdentityModule } from './core/identity/index.ts';
import { createGateway, serviceRoutes } from './gateway/index.ts';

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
  /** Identity (tenants, API keys, OAuth clients) and the access decision, in every process; its admin API on the gateway. */
  readonly identity: IdentityModule;
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
  const keyEncryptionKey = roles.includes('gateway')
    ? resolveKeyEncryptionKey({ configured: config.auth.key_encryption_key, env: config.env, dataDir: config.data_dir })
    : undefined;
  // A service guessing the gateway's URL wrong would refuse every token with a 401 and no other sign.
  if (config.env === 'production' && !roles.includes('gateway') && !config.auth.issuer && !config.services.gateway.url) {
    throw new Error(
      'auth.issuer (the gateway URL tokens name as iss) or services.gateway.url must be set for a service running without the gateway',
    );
  }
  const platform = await openPlatform({ config, version: options.version, service: processName, logger: options.logger });
  let accepting = false;

  const modules: Partial<Record<'autonomous' | 'collaborative', ServiceModule>> = {};
  if (roles.includes('autonomous')) modules.autonomous = createAutonomousService(platform);
  if (roles.includes('collaborative')) modules.collaborative = createCollaborativeService(platform);
  const urls: Partial<Record<Role, string>> = {};
  const issuer = (): string =>
    config.auth.issuer ??
    urls.gateway ??
    config.services.gateway.url ??
    `${tls ? 'https' : 'http'}://127.0.0.1:${config.services.gateway.port}`;
  // Every process decides access itself (zero trust): a service reached directly is as closed as through the gateway.
  const identity = createIdentityModule(platform, { ownIssuer: issuer });
  const tokens =
    keyEncryptionKey &&
    createTokenModule({
      db: platform.db,
      clock: platform.clock,
      issuer,
      audience: config.auth.audience,
      accessTokenTtlMs: config.auth.access_token_ttl,
      keyEncryptionKey,
      clients: { authenticate: (clientId, secret) => identity.authenticateClient(clientId, secret) },
      users: identity.users,
      passwordGrant: config.auth.password_grant,
      refreshTokenTtlMs: config.auth.refresh_token_ttl,
      onEventAppended: () => platform.relay.notify(),
    });

  const rateLimits = createRateLimitHook({
    limiter: platform.rateLimiter,
    config: config.rate_limits,
    logger: platform.logger,
    metrics: platform.metrics,
  });
  const idempotency = platform.idempotency;
  const idempotencySweep = createIdempotencySweep({ store: idempotency, intervalMs: config.retention.interval, logger: platform.logger });
  const apps: Partial<Record<Role, HttpServer>> = {};
  const started: ServiceModule[] = [];
  let identityStarted = false;
  try {
    const gateway = roles.includes('gateway') ? createGateway({ platform, local: modules, identity, tokens }) : undefined;
    // Modules start before any port opens, so the first request finds their data seeded and consumers running.
    for (const module of Object.values(modules)) {
      await module.start();
      started.push(module);
    }
    await identity.start({ bootstrap: gateway !== undefined });
    identityStarted = true;
    for (const role of roles) {
      const app = await createHttpServer({
        name: role,
        version: options.version,
        logger: platform.logger.child({ role }),
        metrics: platform.metrics,
        bodyLimitBytes: config.http.body_limit_bytes,
        keepAliveTimeoutMs: config.http.keep_alive_timeout,
        checks: role === 'gateway' && gateway ? [...platform.checks, ...gateway.checks] : platform.checks,
        logRequests: config.http.log_requests,
        accepting: () => accepting,
        access: identity.access,
        anonymous: config.auth.anonymous,
        rateLimits,
        ...(tls ? { tls } : {}),
        cors: config.http.cors,
        jsonMaxDepth: config.http.json_max_depth,
        trustedProxies: config.http.trusted_proxies,
      });
      // Before the routes, so its hooks cover each of them.
      await app.register(idempotencyPlugin, { store: idempotency, logger: platform.logger });
      await app.register(
        role === 'gateway' && gateway ? gateway.routes : serviceRoutes(modules[role as 'autonomous' | 'collaborative'] as ServiceModule),
      );
      const { host = config.http.host, port } = config.services[role];
      const address = await app.listen({ host, port: options.ephemeralPorts ? 0 : port });
      apps[role] = app;
      urls[role] = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1');
    }
    platform.relay.start();
    idempotencySweep.start();
  } catch (error) {
    await Promise.allSettled(Object.values(apps).map((app) => app.close()));
    await Promise.allSettled(started.map((module) => module.stop()));
    if (identityStarted) await identity.stop().catch(() => undefined);
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
    close: () =>
      (closing ??= (async () => {
        accepting = false;
        idempotencySweep.stop();
        await Promise.allSettled(Object.values(apps).map((app) => app.close()));
        await Promise.allSettled(Object.values(modules).map((module) => module.stop()));
        await identity.stop().catch((error: unknown) => platform.logger.warn({ err: error }, 'stopping identity failed'));
        await platform.close();
      })()),
  };
}
