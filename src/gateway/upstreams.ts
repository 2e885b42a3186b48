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
  | { readonly kind: 'http'; readonly name: string; readonly prefixes: readonly string[]; readonly url: string };

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
    for (const prefix of upstream.prefixes) {
      app.all(prefix, forward, handler);
      app.all(`${prefix}/*`, forward, handler);
    }
  };

/** A service's routes under its prefix, and its extra mounts under theirs. */
export const serviceRoutes =
  (service: ServiceModule): FastifyPluginAsync =>
  async (app) => {
    await app.register(service.routes, { prefix: service.prefix });
    for (const mount of service.extraMounts ?? []) await app.register(mount.routes, { prefix: mount.prefix });
  };

/** Mounts each upstream's routes under its prefix. */
export const upstreamRoutes: FastifyPluginAsync<{ upstreams: readonly Upstream[] }> = async (app, options) => {
  for (const upstream of options.upstreams) {
    if (upstream.kind === 'in-process') await app.register(serviceRoutes(upstream.service));
    else await app.register(proxyTo(upstream));
  }
};
