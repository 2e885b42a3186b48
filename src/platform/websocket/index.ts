import type { Config } from '../config/schema.ts';
import type { Platform } from '../platform.ts';
import type { WebSocketLimits, WebSocketOptions } from '../http/websocket.ts';
import { createWebSocketTickets } from './tickets.ts';

export { createWebSocketTickets, type IssuedTicket, type WebSocketTickets } from './tickets.ts';
export { webSocketTicketRoutes, type TicketRoutesOptions } from './ticket-routes.ts';

/** The limits `http.websocket` sets, for every WebSocket this process serves or forwards. */
export function webSocketLimitsOf(settings: Config['http']['websocket']): WebSocketLimits {
  return {
    maxPayloadBytes: settings.max_payload_bytes,
    maxBufferedBytes: settings.max_buffered_bytes,
    bufferExceededCode: settings.buffer_exceeded_code,
    pingIntervalMs: settings.ping_interval,
    closeTimeoutMs: settings.close_timeout,
    handshakeTimeoutMs: settings.handshake_timeout,
  };
}

/** What createHttpServer needs for WebSocket, from `http.websocket`: the limits, and tickets kept in the database. */
export function webSocketOptionsOf(settings: Config['http']['websocket'], platform: Pick<Platform, 'db' | 'clock'>): WebSocketOptions {
  return {
    ...webSocketLimitsOf(settings),
    tickets: createWebSocketTickets({ db: platform.db, clock: platform.clock, ttlMs: settings.ticket_ttl }),
  };
}
