import type { FastifyRequest } from 'fastify';
import type {} from '@fastify/websocket';

/**
 * Where a WebSocket client that cannot set headers (a browser) puts its credential:
 * - a bearer subprotocol, `Sec-WebSocket-Protocol: blocks.bearer.<token>, blocks.v1`: the server
 *   answers with one of the other protocols offered, never the credential;
 * - a ticket (`?ticket=wst_…`) from a ticket route (src/platform/websocket/), single-use and
 *   short-lived, so a URL that ends up in a log or a browser history opens nothing.
 * A long-lived token or key is never taken from a URL.
 */
export const BEARER_PROTOCOL_PREFIX = 'blocks.bearer.';
export const TICKET_PARAMETER = 'ticket';

/** What an upgrade request carries besides headers: at most one of each, or `ambiguous`. */
export type WebSocketCredential = { readonly kind: 'bearer' | 'ticket'; readonly value: string } | 'ambiguous' | undefined;

/** The subprotocols a client offered, in its order. */
export const offeredProtocols = (header: string | string[] | undefined): string[] =>
  [header ?? []]
    .flat()
    .flatMap((value) => value.split(','))
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');

/**
 * Whether the request is a WebSocket upgrade to a route that takes one: only there may a
 * credential come in a subprotocol or a ticket (a plain GET with `?ticket=` is refused like any
 * request without a credential).
 */
export const isWebSocketUpgrade = (request: FastifyRequest): boolean => request.ws && request.routeOptions.config.websocket === true;

/** The credential an upgrade request carries in its subprotocols or its query; undefined when none. */
export function webSocketCredentialOf(request: FastifyRequest): WebSocketCredential {
  const bearers = offeredProtocols(request.headers['sec-websocket-protocol'])
    .filter((protocol) => protocol.startsWith(BEARER_PROTOCOL_PREFIX))
    .map((protocol) => protocol.slice(BEARER_PROTOCOL_PREFIX.length));
  const query = request.url.indexOf('?');
  const tickets = query === -1 ? [] : new URLSearchParams(request.url.slice(query + 1)).getAll(TICKET_PARAMETER);
  if (bearers.length + tickets.length > 1) return 'ambiguous';
  if (bearers[0] !== undefined) return { kind: 'bearer', value: bearers[0] };
  if (tickets[0] !== undefined) return { kind: 'ticket', value: tickets[0] };
  return undefined;
}
