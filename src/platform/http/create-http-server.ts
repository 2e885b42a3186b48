import Fastify, { LogController, type FastifyRequest, type FastifySchema } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { swaggerPlugins } from './openapi.ts';
import { correlationIdOf, traceOf, type TraceContext } from './trace-context.ts';
import { buildProblem, problemFor, sendProblem } from './problem.ts';
import { httpErrors } from './errors.ts';
import { healthRoutes, type DependencyCheck } from './health.ts';
import { createMethodIndex } from './method-index.ts';
import type { Caller } from './caller.ts';
import { CLIENT_SCOPE, PUBLIC_SCOPE, UPSTREAM_SCOPE, type Access } from './access.ts';
import type { RateLimitHook } from './rate-limit.ts';
import type { HttpsServerOptions } from './tls.ts';
import { securityHeadersHook } from './security-headers.ts';
import { corsHook, type CorsConfig } from './cors.ts';
import { checkedJsonParser } from './json-limits.ts';
import { controlCharacterKeyword, paramsSchemaOf, withTextRule } from './control-characters.ts';
import { DEFAULT_WEBSOCKET_LIMITS, webSocketPlugin, type WebSocketOptions } from './websocket.ts';
import { redactUrl } from './redact-url.ts';
import type { Logger } from '../logger.ts';
import type { TenantResourceMarker } from '../crud/tenant-resource-routes.ts';
import type { Metrics } from '../telemetry/metrics.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The scope a caller needs, or one of the kinds in access.ts (`public`, `client`, `upstream`).
     * Every route declares one: a route without it stops the server from starting.
     */
    scope?: string;
  }
  interface FastifyInstance {
    /** Every route registered so far, for the check that none is served undocumented (OWASP API9). */
    routeInventory(): RouteInventoryEntry[];
  }
  interface FastifyRequest {
    trace: TraceContext;
    caller: Caller;
  }
}

/** One method of one registered route. */
export interface RouteInventoryEntry {
  readonly method: string;
  readonly url: string;
  readonly scope: string;
  /** Left out of the OpenAPI document on purpose (the gateway's pass-through to a service documented elsewhere). */
  readonly hidden: boolean;
  /** Set on the routes of a tenant-owned resource (src/platform/crud): how to make one, for the isolation tests. */
  readonly tenantResource?: TenantResourceMarker;
}

export interface HttpServerOptions {
  /** Shown in the OpenAPI title and on log lines: `gateway`, `autonomous`, `collaborative`. */
  readonly name: string;
  readonly version: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly bodyLimitBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly checks: readonly DependencyCheck[];
  /** Log one line per answered request. */
  readonly logRequests: boolean;
  readonly accepting: () => boolean;
  /** The zero-trust decision (see access.ts): who the caller is and whether it may call the route. */
  readonly access: Access;
  /** Whether `/metrics` and `/docs` answer without a credential (else they need `metrics:read`, `docs:read`). */
  readonly anonymous: { readonly metrics: boolean; readonly docs: boolean };
  /** Per-caller rate limits (see rate-limit.ts); none when absent. */
  readonly rateLimits?: RateLimitHook;
  /** Serve HTTPS with these (see tls.ts); plain HTTP when absent. */
  readonly tls?: HttpsServerOptions;
  /** Browser cross-origin access; none when absent. */
  readonly cors?: CorsConfig;
  /** Deepest nesting of arrays and objects a JSON body may have; 32 when absent. */
  readonly jsonMaxDepth?: number;
  /** Addresses or CIDRs whose `X-Forwarded-For` is believed for `request.ip`; none when absent. */
  readonly trustedProxies?: readonly string[];
  /**
   * The scopes the registered modules define (`registry.scopes.known`): a route declaring any other
   * stops the server from starting, so no route can ask for a scope nobody is able to grant.
   */
  readonly knownScopes?: readonly string[];
  /** OpenAPI tags (one per module served), with their descriptions. */
  readonly tags?: ReadonlyArray<{ readonly name: string; readonly description: string }>;
  /** WebSocket limits and the ticket store (see websocket.ts); the `http.websocket` defaults and no tickets when absent. */
  readonly webSocket?: WebSocketOptions;
}

/**
 * Builds (does not start) a fastify app with what every Blocks process serves: correlation ids
 * and W3C trace context, problem+json for every error, RED metrics, health, /metrics and
 * OpenAPI at /docs. Route plugins are registered on it afterwards.
 */
export async function createHttpServer(options: HttpServerOptions) {
  // Typed as a plain HTTP server: fastify's API is the same over TLS, and one HttpServer type keeps callers simple.
  const https = options.tls ? ({ https: options.tls } as object) : {};
  const app = Fastify({
    ...https,
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlation_id' }),
    bodyLimit: options.bodyLimitBytes,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Fastify's own 503 while closing is a plain JSON body; the onRequest hook below answers with a problem instead.
    return503OnClosing: false,
    ...(options.trustedProxies?.length ? { trustProxy: [...options.trustedProxies] } : {}),
    genReqId: (raw) => correlationIdOf(raw.headers['x-correlation-id']),
    childLoggerFactory(logger, bindings, childOptions, raw) {
      return logger.child({ ...bindings, trace_id: traceOf(raw).traceId }, childOptions);
    },
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, useDefaults: true },
      plugins: [controlCharacterKeyword],
    },
    frameworkErrors(error, request, reply) {
      sendProblem(reply, problemFor(error, request));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // JSON only: a text/plain body on a JSON route is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  const parseJson = checkedJsonParser(app.getDefaultJsonParser('error', 'error'), options.jsonMaxDepth ?? 32);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
  app.addHook('onSend', securityHeadersHook({ tls: options.tls !== undefined }));

  const methods = createMethodIndex();
  const inventory: RouteInventoryEntry[] = [];
  app.addHook('onRoute', (route) => {
    // The documentation's own routes (/docs, /docs/json, /docs/static/…), not every path that starts with the same letters.
    if (route.url === '/docs' || route.url.startsWith('/docs/'))
      route.config = { ...route.config, scope: options.anonymous.docs ? PUBLIC_SCOPE : 'docs:read' };
    if (!route.config?.scope) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no scope: every route must say who may call it`);
    }
    if (options.knownScopes && !ACCESS_KINDS.includes(route.config.scope) && !options.knownScopes.includes(route.config.scope)) {
      throw new Error(`route ${String(route.method)} ${route.url} declares scope ${route.config.scope}, which no module defines`);
    }
    route.schema = withControlCharacterRules(route.schema, route.url);
    methods.add(route.method, route.url);
    // A WebSocket route (@fastify/websocket marks it hidden after this hook) has no OpenAPI operation to document.
    const hidden = route.schema?.hide === true || (route as { websocket?: boolean }).websocket === true;
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      const { tenantResource } = route.config;
      inventory.push({ method, url: route.url, scope: route.config.scope, hidden, ...(tenantResource ? { tenantResource } : {}) });
    }
  });
  app.decorate('routeInventory', () => [...inventory]);

  app.decorateRequest('trace', null as unknown as TraceContext);
  app.decorateRequest('caller', null as unknown as Caller);
  app.addHook('onRequest', async (request, reply) => {
    request.trace = traceOf(request.raw);
    reply.header('x-correlation-id', request.id);
    reply.header('traceparent', request.trace.traceparent);
  });
  // Draining: a request that still arrives (pipelined, or on a busy keep-alive connection) runs
  // nothing, and is told to go elsewhere in the format of every other error.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close').header('retry-after', '1');
    const detail = 'This server is shutting down; send the request again (another instance will take it).';
    return sendProblem(reply, buildProblem(httpErrors.SHUTTING_DOWN.status, 'SHUTTING_DOWN', detail, request));
  });
  // Before access: a preflight carries no credential, is answered here and costs the caller nothing.
  if (options.cors) app.addHook('onRequest', corsHook(options.cors));
  // Before access: its onRequest marks upgrades, where a credential may come in a subprotocol or a ticket.
  await app.register(webSocketPlugin, { limits: options.webSocket ?? DEFAULT_WEBSOCKET_LIMITS, metrics: options.metrics });
  const tickets = options.webSocket?.tickets;
  const access = tickets !== undefined && options.access.withTickets ? options.access.withTickets(tickets) : options.access;
  app.addHook('onRequest', access.onRequest);
  app.addHook('onResponse', access.onResponse);
  // After the caller is known: allowances are per caller.
  if (options.rateLimits) app.addHook('onRequest', options.rateLimits);

  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: routeLabel(request), status_code: String(reply.statusCode) };
    options.metrics.httpRequests.inc(labels);
    options.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
    if (reply.statusCode >= 500) options.metrics.httpErrors.inc(labels);
    if (options.logRequests) {
      request.log.info(
        {
          method: request.method,
          url: redactUrl(request.url),
          status: reply.statusCode,
          duration_ms: Math.round(reply.elapsedTime * 100) / 100,
        },
        'request completed',
      );
    }
  });

  app.setErrorHandler((error, request, reply) => {
    const problem = problemFor(error, request);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.debug({ err: error, code: problem.code }, 'request rejected');
    return sendProblem(reply, problem);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = methods.allowedFor(path);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      const detail = `${request.method} is not allowed here; use ${allowed.join(', ')}`;
      return sendProblem(reply, buildProblem(httpErrors.METHOD_NOT_ALLOWED.status, 'METHOD_NOT_ALLOWED', detail, request));
    }
    return sendProblem(reply, buildProblem(httpErrors.NOT_FOUND.status, 'NOT_FOUND', `No route ${request.method} ${path}`, request));
  });

  await app.register(swaggerPlugins, { title: `Blocks ${options.name}`, version: options.version, tags: options.tags ?? [] });
  await app.register(healthRoutes, { version: options.version, checks: options.checks, accepting: options.accepting });
  app.get(
    '/metrics',
    {
      config: { scope: options.anonymous.metrics ? PUBLIC_SCOPE : 'metrics:read' },
      schema: { summary: 'Prometheus metrics', tags: ['health'], hide: false },
    },
    async (_request, reply) => reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()),
  );
  return app;
}

/** The scopes that name a kind of access rather than a grant (access.ts). */
const ACCESS_KINDS: readonly string[] = [PUBLIC_SCOPE, CLIENT_SCOPE, UPSTREAM_SCOPE];

const routeLabel = (request: FastifyRequest): string => request.routeOptions.url ?? 'unmatched';

/**
 * The route's schema with every string field's control-character rule (control-characters.ts):
 * path and query parameters are single-line, body strings free text unless they say otherwise. A
 * route with parameters in its URL and no params schema gets one, so none goes unchecked.
 */
function withControlCharacterRules(schema: FastifySchema | undefined, url: string): FastifySchema {
  const params = schema?.params ?? paramsSchemaOf(url);
  return {
    ...schema,
    ...(params === undefined ? {} : { params: withTextRule(params, 'line') }),
    ...(schema?.querystring === undefined ? {} : { querystring: withTextRule(schema.querystring, 'line') }),
    ...(schema?.body === undefined ? {} : { body: withTextRule(schema.body, 'text') }),
  };
}

/** A Blocks HTTP app: fastify with the TypeBox type provider. */
export type HttpServer = Awaited<ReturnType<typeof createHttpServer>>;
