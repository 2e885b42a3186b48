import { Stream } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import replyFrom from '@fastify/reply-from';
import type { ServiceModule } from '../platform/service-module.ts';
import type { DependencyCheck } from '../platform/http/health.ts';
import type { Metrics } from '../platform/telemetry/metrics.ts';
import { isCircuitOpenError } from '../platform/resilience/errors.ts';
import { upstreamCircuitOpen, upstreamUnavailable } from './errors.ts';
import type { UpstreamPool } from './pool.ts';
import { DEFAULT_WEBSOCKET_LIMITS, type WebSocketLimits } from '../platform/http/websocket.ts';
import { createWebSocketForwarding } from './forward-websocket.ts';

/**
 * Where the gateway sends a service's traffic: mounted in the same process (no network hop, as
 * in `blocks start`), or over HTTP to a pool of processes running it elsewhere.
 */
export type Upstream =
  | { readonly kind: 'in-process'; readonly service: ServiceModule }
  | { readonly kind: 'http'; readonly name: string; readonly prefixes: readonly string[]; readonly pool: UpstreamPool };

export interface UpstreamRoutesOptions {
  readonly upstreams: readonly Upstream[];
  /** Send an idempotent request that got no answer to another member. */
  readonly retryIdempotent: boolean;
  /** Members one request may be sent to, the first included. */
  readonly maxAttempts: number;
  /** Where the healthy-member gauge goes; none when absent. */
  readonly metrics?: Metrics;
  /** Limits of forwarded WebSocket connections (`http.websocket`); the defaults when absent. */
  readonly webSocket?: WebSocketLimits;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** RFC 9110 idempotent methods, and any request whose client made it so with an Idempotency-Key. */
const isIdempotent = (request: FastifyRequest): boolean =>
  IDEMPOTENT.has(request.method) || request.headers['idempotency-key'] !== undefined;

/**
 * Whether the member refused the connection (ECONNREFUSED: nothing listens, as while a replica
 * shuts down): the request never left the gateway, so sending it elsewhere cannot do anything
 * twice, whatever its method. reply-from wraps the socket error, hence the walk down `cause`.
 */
export const isConnectionRefused = (error: unknown): boolean => {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if ((cause as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
    if (cause instanceof AggregateError && cause.errors.length > 0 && cause.errors.every(isConnectionRefused)) return true;
  }
  return false;
};

const proxyTo =
  (upstream: Extract<Upstream, { kind: 'http' }>, options: UpstreamRoutesOptions): FastifyPluginAsync =>
  async (app) => {
    const { pool, name } = upstream;
    // No `base`: the origin comes from each attempt's member. No retries of its own either: a
    // retry on the same member is what failover below replaces.
    await app.register(replyFrom, { undici: { connections: 128, pipelining: 1 }, destroyAgent: true, retryMethods: [] });
    app.addHook('onReady', async () => pool.start());
    app.addHook('onClose', async () => pool.close());

    const giveUp = (reply: FastifyReply, cause?: Error): void => {
      const retryAfterMs = cause ? undefined : pool.allOpenRetryAfterMs();
      if (retryAfterMs === undefined) {
        reply.send(upstreamUnavailable(name, cause));
        return;
      }
      reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
      reply.send(upstreamCircuitOpen(name, retryAfterMs));
    };

    const handler = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
      // A parsed body can be sent again; a streamed one is gone after the first attempt.
      const replayable = options.retryIdempotent && isIdempotent(request) && !(request.body instanceof Stream);
      const tried = new Set<string>();
      // The last member that failed to answer this request, reported over any breaker state.
      let lastFailure: Error | undefined;
      const attempt = (): void => {
        const url = tried.size < options.maxAttempts ? pool.pick(tried) : undefined;
        if (url === undefined) return giveUp(reply, lastFailure);
        tried.add(url);
        const leave = pool.enter(url);
        reply.raw.once('close', leave);
        const send = () =>
          new Promise<number | undefined>((resolve, reject) => {
            try {
              reply.from(request.url, {
                getUpstream: () => url,
                rewriteRequestHeaders: (_req, headers) => ({
                  ...headers,
                  'x-correlation-id': request.id,
                  traceparent: request.trace.traceparent,
                  // Replaced, never appended: the client's own X-Forwarded-For is believed only as far as
                  // this gateway's trusted_proxies say, and request.ip is already that verdict.
                  'x-forwarded-for': request.ip,
                }),
                onResponse: (_req, inner, response) => {
                  resolve(response.statusCode);
                  inner.send(response.stream);
                },
                onError: (_inner, { error }) => reject(error),
              });
            } catch (error) {
              // reply-from refused the request itself (a path escaping with `..`): not the member's fault.
              reply.send(error);
              resolve(undefined);
            }
          });
        pool.call(url, send).then(
          () => undefined,
          (error: unknown) => {
            leave();
            // Refused by the member's open breaker, or its connection refused: nothing was sent, so
            // any request may go elsewhere, whatever its method. A streamed body is the exception:
            // it may have been read into the failed attempt, and cannot be read twice.
            const streamed = request.body instanceof Stream;
            const unsent = isCircuitOpenError(error) || (isConnectionRefused(error) && !streamed);
            if (!isCircuitOpenError(error)) lastFailure = error instanceof Error ? error : new Error(String(error));
            if (!reply.sent && (replayable || unsent)) return attempt();
            if (!reply.sent) giveUp(reply, lastFailure);
          },
        );
      };
      attempt();
      return reply;
    };

    // GET also takes WebSocket upgrades, forwarded to the same pool; every other method is HTTP only.
    const webSocket = createWebSocketForwarding({
      pool,
      maxAttempts: options.maxAttempts,
      limits: options.webSocket ?? DEFAULT_WEBSOCKET_LIMITS,
    });
    const others = app.supportedMethods.filter((method) => method !== 'GET');
    const forward = { config: { scope: 'upstream' }, schema: { hide: true } } as const;
    for (const url of upstream.prefixes.flatMap((prefix) => [prefix, `${prefix}/*`])) {
      app.route({
        method: 'GET',
        url,
        ...forward,
        exposeHeadRoute: false,
        preHandler: webSocket.preHandler,
        handler,
        wsHandler: webSocket.wsHandler,
      });
      app.route({ method: others, url, ...forward, handler });
    }
  };

/** A service's routes under its prefix, and its extra mounts under theirs. */
export const serviceRoutes =
  (service: ServiceModule): FastifyPluginAsync =>
  async (app) => {
    await app.register(service.routes, { prefix: service.prefix });
    for (const mount of service.extraMounts ?? []) await app.register(mount.routes, { prefix: mount.prefix });
  };

const pools = (upstreams: readonly Upstream[]): UpstreamPool[] => upstreams.flatMap((u) => (u.kind === 'http' ? [u.pool] : []));

/**
 * One non-required /health dependency per pool: the gateway still serves the other services when
 * one has no member left, so it stays ready.
 */
export const upstreamChecks = (upstreams: readonly Upstream[]): DependencyCheck[] =>
  pools(upstreams).map((pool) => ({
    name: `upstream (${pool.service})`,
    required: false,
    check: async () => {
      const members = pool.members();
      if (pool.available() === 0) throw new Error(`no member of ${members.length} can take requests`);
      return 0;
    },
  }));

/** Mounts each upstream's routes under its prefix; pools check their members while the app runs. */
export const upstreamRoutes: FastifyPluginAsync<UpstreamRoutesOptions> = async (app, options) => {
  const http = pools(options.upstreams);
  if (http.length > 0) {
    options.metrics?.gauge(
      'blocks_gateway_upstream_members_available',
      'Members of each upstream pool that may take requests (healthy, not ejected, breaker not open)',
      ['service'],
      (set) => {
        for (const pool of http) set(pool.available(), { service: pool.service });
      },
    );
  }
  for (const upstream of options.upstreams) {
    if (upstream.kind === 'in-process') await app.register(serviceRoutes(upstream.service));
    else await app.register(proxyTo(upstream, options));
  }
};
