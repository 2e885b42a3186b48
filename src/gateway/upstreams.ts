import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import replyFrom from '@fastify/reply-from';
import type { ServiceModule } from '../platform/service-module.ts';
import { upstreamUnavailable } from './errors.ts';

/**
 * Where the gateway sends a service's traffic: mounted in the same process (no network hop, as
 * in `blocks start`), or over HTTP to the service running elsewhere.
 */
export type Upstream =
  | { readonly kind: 'in-process'; readonly service: ServiceModule }
  | { readonly kind: 'http'; readonly name: string; readonly prefix: string; readonly url: string };

const proxyTo =
  (upstream: Extract<Upstream, { kind: 'http' }>): FastifyPluginAsync =>
  async (app) => {
    await app.register(replyFrom, { base: upstream.url, undici: { connections: 128, pipelining: 1 } });
    const forward = {
      config: { scope: 'upstream' },
      schema: { hide: true },
    } as const;
    const handler = (request: FastifyRequest, reply: FastifyReply) =>
      reply.from(request.url, {
        rewriteRequestHeaders: (_req, headers) => ({ ...headers, 'x-correlation-id': request.id, traceparent: request.trace.traceparent }),
        onError: (innerReply, { error }) => {
          innerReply.send(upstreamUnavailable(upstream.name, error));
        },
      });
    app.all(upstream.prefix, forward, handler);
    app.all(`${upstream.prefix}/*`, forward, handler);
  };

/** Mounts each upstream's routes under its prefix. */
export const upstreamRoutes: FastifyPluginAsync<{ upstreams: readonly Upstream[] }> = async (app, options) => {
  for (const upstream of options.upstreams) {
    if (upstream.kind === 'in-process') await app.register(upstream.service.routes, { prefix: upstream.service.prefix });
    else await app.register(proxyTo(upstream));
  }
};
