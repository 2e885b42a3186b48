import type { FastifyReply, FastifyRequest } from 'fastify';

/** Nothing may be loaded, framed or referred to from an API answer: it is data, never a page. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/**
 * The /docs page (swagger-ui) loads its own scripts, styles and data: images from this origin and
 * sets inline style attributes; it never runs inline scripts, so `script-src 'self'` holds.
 */
const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/** Two years, the preload list's minimum; only sent over TLS (RFC 6797 §7.2). */
const HSTS = 'max-age=63072000; includeSubDomains';

/**
 * An onSend hook that puts the usual security headers on every answer, errors, 404s and proxied
 * answers included, and strips banners an upstream may have sent (`server`, `x-powered-by`).
 */
export function securityHeadersHook(options: { readonly tls: boolean }) {
  return async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('content-security-policy', isDocs(request.url) ? DOCS_CSP : API_CSP);
    if (options.tls) reply.header('strict-transport-security', HSTS);
    reply.removeHeader('server');
    reply.removeHeader('x-powered-by');
    return payload;
  };
}

const isDocs = (url: string): boolean => url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?');
