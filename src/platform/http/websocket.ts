import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import fastifyWebsocket, { type WebsocketPluginOptions } from '@fastify/websocket';
import { WebSocket } from 'ws';
import type { Metrics } from '../telemetry/metrics.ts';
import type { TicketRedeemer } from './access.ts';
import { BEARER_PROTOCOL_PREFIX } from './websocket-credentials.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on routes that take a WebSocket upgrade (`websocket: true` or a `wsHandler`); a route never sets it itself. */
    websocket?: boolean;
  }
}

/**
 * Close codes Blocks sends (RFC 6455 §7.4.1, and the IANA registry for 1013 and 1014). A
 * connection the peer ended without a close frame is seen as 1006; that code is never sent.
 */
export const CLOSE_CODES = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
} as const;

export interface WebSocketLimits {
  /** Largest message a peer may send; a larger one closes the connection with 1009. */
  readonly maxPayloadBytes: number;
  /** Data waiting for a slow reader past which the connection is closed with `bufferExceededCode`. */
  readonly maxBufferedBytes: number;
  readonly bufferExceededCode: typeof CLOSE_CODES.POLICY_VIOLATION | typeof CLOSE_CODES.TRY_AGAIN_LATER;
  /** A ping every interval; a connection that has not answered the previous one is cut. 0: no pings. */
  readonly pingIntervalMs: number;
  /** How long a closing handshake may take before the connection is cut. */
  readonly closeTimeoutMs: number;
  /** How long the gateway waits for a service to accept an upgrade it forwards. */
  readonly handshakeTimeoutMs: number;
}

export interface WebSocketOptions extends WebSocketLimits {
  /** Redeems `?ticket=` on upgrades; none: a ticket is refused like an unknown one. */
  readonly tickets?: TicketRedeemer;
}

/** The limits `config/default.yaml` sets under `http.websocket`, for servers built without configuration (tests, benchmarks). */
export const DEFAULT_WEBSOCKET_LIMITS: WebSocketLimits = {
  maxPayloadBytes: 1024 * 1024,
  maxBufferedBytes: 8 * 1024 * 1024,
  bufferExceededCode: CLOSE_CODES.TRY_AGAIN_LATER,
  pingIntervalMs: 30_000,
  closeTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
};

const GOING_AWAY_REASON = 'server shutting down';
const BUFFER_EXCEEDED_REASON = 'send buffer exceeded: the client reads too slowly';

/** The subprotocol a route decided to answer with, on the raw request `handleProtocols` is given. */
const ANSWERED_PROTOCOL = Symbol('blocks.websocket.protocol');
type WithAnsweredProtocol = IncomingMessage & { [ANSWERED_PROTOCOL]?: string | null };

/**
 * Makes the upgrade of `request` answer with `protocol` (null: with none) instead of the first
 * non-credential protocol offered. The gateway calls it with the protocol the service it forwards
 * to chose, so the client and the service agree on one.
 */
export function answerWithSubprotocol(request: FastifyRequest, protocol: string | null): void {
  (request.raw as WithAnsweredProtocol)[ANSWERED_PROTOCOL] = protocol;
}

/** The first protocol offered that is not a credential: a token is never echoed back to the client. */
const chooseProtocol = (protocols: Set<string>, request: IncomingMessage): string | false => {
  const answered = (request as WithAnsweredProtocol)[ANSWERED_PROTOCOL];
  if (answered !== undefined) return answered ?? false;
  for (const protocol of protocols) if (!protocol.startsWith(BEARER_PROTOCOL_PREFIX)) return protocol;
  return false;
};

type SendOptions = Parameters<WebSocket['send']> extends [unknown, infer O, ...unknown[]] ? Exclude<O, (...args: never[]) => void> : never;
type SendCallback = (error?: Error) => void;

/**
 * A server-side socket that closes itself when what it has queued for the client passes
 * `maxBufferedBytes`: a reader that does not keep up costs this process a bounded amount of memory,
 * and learns why it was dropped (close code and reason). The close frame follows the queued data;
 * a client that reads nothing at all is cut after `closeTimeoutMs`.
 */
function boundedSocketClass(limits: WebSocketLimits, onExceeded: () => void): typeof WebSocket {
  return class BoundedWebSocket extends WebSocket {
    override send(data: Parameters<WebSocket['send']>[0], options?: SendOptions | SendCallback, callback?: SendCallback): void {
      if (typeof options === 'function') super.send(data, options);
      else super.send(data, options ?? {}, callback);
      if (this.readyState === WebSocket.OPEN && this.bufferedAmount > limits.maxBufferedBytes) {
        onExceeded();
        this.close(limits.bufferExceededCode, BUFFER_EXCEEDED_REASON);
      }
    }
  };
}

/** The ws server @fastify/websocket made (typed by its CommonJS view of ws), and the sockets it tracks. */
type ClientTracker = FastifyInstance['websocketServer'];
type ServerSocket = ClientTracker extends { clients: Set<infer S> } ? S : never;

/**
 * Pings every connection each interval and cuts the ones that did not answer the previous ping:
 * a peer gone without a close frame (a laptop closed, a NAT entry dropped) is noticed within two
 * intervals instead of holding its resources for ever.
 */
function startKeepalive(server: ClientTracker, intervalMs: number, onDead: () => void): () => void {
  if (intervalMs <= 0) return () => undefined;
  const answered = new WeakSet<object>();
  server.on('connection', (socket: ServerSocket) => {
    answered.add(socket);
    socket.on('pong', () => answered.add(socket));
  });
  const timer = setInterval(() => {
    for (const socket of server.clients) {
      if (socket.readyState !== WebSocket.OPEN) continue;
      if (!answered.has(socket)) {
        onDead();
        socket.terminate();
        continue;
      }
      answered.delete(socket);
      socket.ping();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Closes every connection with 1001 and waits until each has closed (ws cuts one that does not answer within closeTimeout). */
async function closeEvery(server: ClientTracker): Promise<void> {
  const closed = [...server.clients].map(
    (socket) =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        if (socket.readyState === WebSocket.OPEN) socket.close(CLOSE_CODES.GOING_AWAY, GOING_AWAY_REASON);
      }),
  );
  await Promise.all(closed);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * WebSocket for every Blocks app (@fastify/websocket on ws). A route takes upgrades with
 * `websocket: true` (or a `wsHandler` beside its HTTP handler) and declares its scope like any
 * route: the upgrade request runs the same hooks, so the access decision refuses it with a
 * problem+json 401/403 before anything is upgraded. Per connection: messages up to
 * `maxPayloadBytes` (else 1009), queued data up to `maxBufferedBytes` (else the configured code),
 * ping/pong keepalive, and on close of the app a 1001 with a reason to each client.
 *
 * Register before the access hook: the plugin's onRequest marks upgrade requests (`request.ws`),
 * which the access decision reads to take a credential from a subprotocol or a ticket.
 */
export const webSocketPlugin = fp<{ limits: WebSocketLimits; metrics: Metrics }>(
  async (app: FastifyInstance, { limits, metrics }) => {
    const cut = metrics.counter(
      'blocks_websocket_cut_total',
      'WebSocket connections this process closed for exceeding a limit (send_buffer) or not answering pings (keepalive)',
      ['reason'],
    );
    const Bounded = boundedSocketClass(limits, () => cut.inc({ reason: 'send_buffer' }));
    let stopKeepalive = (): void => undefined;
    // closeTimeout is ws 8.19's; @types/ws does not list it yet.
    const serverOptions: NonNullable<WebsocketPluginOptions['options']> & { closeTimeout: number } = {
      maxPayload: limits.maxPayloadBytes,
      closeTimeout: limits.closeTimeoutMs,
      handleProtocols: chooseProtocol,
      // @types/ws types this option as the module's default export, namespace included; a subclass is what ws asks for.
      WebSocket: Bounded as unknown as NonNullable<WebsocketPluginOptions['options']>['WebSocket'],
    };
    await app.register(fastifyWebsocket, {
      options: serverOptions,
      // The default closes with no code (1005) and does not wait: clients are told why, and the
      // app closes once they have gone (or were cut after closeTimeout).
      preClose: async () => {
        stopKeepalive();
        await closeEvery(app.websocketServer);
      },
      errorHandler: (error, socket, request) => {
        // ws has already sent the close frame that says what went wrong (1009 for a message too
        // big, 1002 for a protocol error); cutting the connection here could drop that frame.
        request.log.debug({ err: error }, 'websocket connection error');
        if (socket.readyState === WebSocket.OPEN) socket.terminate();
      },
    });
    app.addHook('onRoute', (route) => {
      if (route.websocket === true || route.wsHandler !== undefined) route.config = { ...route.config, websocket: true };
    });
    stopKeepalive = startKeepalive(app.websocketServer, limits.pingIntervalMs, () => cut.inc({ reason: 'keepalive' }));
  },
  { name: 'blocks-websocket' },
);
