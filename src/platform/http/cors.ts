import type { FastifyReply, FastifyRequest } from 'fastify';
import { BlocksError } from '../errors.ts';

/** `http.cors` in the configuration. No origins: no cross-origin access at all. */
export interface CorsConfig {
  /** Exact origins (`https://app.example.com`) allowed to call from a browser; `*` for any (never with credentials). */
  readonly origins: readonly string[];
  readonly methods: readonly string[];
  /** Request headers a browser may send beyond the safelisted ones. */
  readonly headers: readonly string[];
  /** How long, in ms, a browser may cache a preflight answer. */
  readonly max_age: number;
  readonly credentials: boolean;
}

/** Answer headers a browser script may read: correlation id, trace and rate-limit state. */
const EXPOSED = ['x-correlation-id', 'traceparent', 'retry-after', 'ratelimit', 'ratelimit-policy', 'www-authenticate'].join(', ');

/**
 * An onRequest hook applying `config`: answers preflights from allowed origins itself (204),
 * refuses preflights from others (403, no Access-Control-* header) and marks answers to allowed
 * origins. Anything without an Origin header is not a cross-origin browser call and passes.
 */
export function corsHook(config: CorsConfig) {
  if (config.credentials && config.origins.includes('*')) {
    throw new Error('http.cors: credentials cannot be allowed for every origin (*); list the origins');
  }
  const origins = new Set(config.origins);
  const any = origins.has('*');
  const methods = config.methods.map((m) => m.toUpperCase()).join(', ');
  const headers = config.headers.join(', ');
  const maxAge = String(Math.floor(config.max_age / 1000));

  return async (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    // The answer depends on Origin even when it is refused: caches must not hand one origin's answer to another.
    reply.header('vary', 'Origin');
    if (origin === undefined) return;
    const allowed = any || origins.has(origin);
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (!allowed) {
      if (preflight) throw new BlocksError('CORS_ORIGIN_NOT_ALLOWED', 403, `Origin ${origin} may not call this API from a browser`);
      return;
    }
    reply.header('access-control-allow-origin', any && !config.credentials ? '*' : origin);
    if (config.credentials) reply.header('access-control-allow-credentials', 'true');
    if (!preflight) {
      reply.header('access-control-expose-headers', EXPOSED);
      return;
    }
    reply.header('access-control-allow-methods', methods);
    if (headers) reply.header('access-control-allow-headers', headers);
    reply.header('access-control-max-age', maxAge);
    return reply.code(204).send();
  };
}
