import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { WebsocketHandler } from '@fastify/websocket';
import { WebSocket, type RawData } from 'ws';
import { isCircuitOpenError } from '../platform/resilience/errors.ts';
import { answerWithSubprotocol, CLOSE_CODES, type WebSocketLimits } from '../platform/http/websocket.ts';
import { offeredProtocols } from '../platform/http/websocket-credentials.ts';
import { upstreamCircuitOpen, upstreamUnavailable } from './errors.ts';
import type { UpstreamPool } from './pool.ts';

export interface ForwardWebSocketOptions {
  readonly pool: UpstreamPool;
  /** Members one upgrade may be sent to, the first included. */
  readonly maxAttempts: number;
  readonly limits: WebSocketLimits;
}

/** How the member answered the upgrade: a connection, or an HTTP answer passed back as it is. */
type Outcome =
  | { readonly kind: 'open'; readonly socket: WebSocket; readonly leave: () => void }
  | { readonly kind: 'answered'; readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: Buffer };

/** Headers that belong to one hop or to the handshake ws makes itself; everything else reaches the service. */
const NOT_FORWARDED = new Set([
  'host',
  'connection',
  'upgrade',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'proxy-authorization',
  'proxy-connection',
  'content-length',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);
const ANSWER_HEADERS = ['content-type', 'www-authenticate', 'retry-after', 'x-correlation-id', 'traceparent'];

/** A close code a peer may send: what arrived is passed on, an abnormal end (1005, 1006, 1015) becomes `fallback`. */
const sendable = (code: number, fallback: number): number =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999) ? code : fallback;

/** Either end of a forwarded connection: ws's own socket, or the one @fastify/websocket hands over (typed by its CommonJS view of ws). */
interface Peer {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: RawData, options: { binary: boolean }): void;
  close(code: number, reason: string): void;
}

const closeWith = (socket: Peer, code: number, reason: string): void => {
  if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(code, reason);
};

/**
 * Forwards WebSocket upgrades to a service's pool as the gateway forwards HTTP: a member is picked
 * by the pool (balancing, health, ejection, breaker), and one the connection cannot be made to is
 * left for another, up to `maxAttempts` (an upgrade carries no body, and nothing happens on a
 * service before it is accepted, so trying again elsewhere is always safe).
 *
 * The member is connected to before the client's upgrade is answered, so the client gets what the
 * service said: its 401/403 problem (the service decides access again: zero trust), or a 101 with
 * the subprotocol the service chose. Then messages flow both ways unchanged (text as text, binary
 * as binary), each side bounded as every Blocks socket is; a close on either side closes the
 * other with the same code and reason (an abnormal end with 1001 towards the service, 1014 towards
 * the client).
 */
export function createWebSocketForwarding(options: ForwardWebSocketOptions): {
  readonly preHandler: preHandlerAsyncHookHandler;
  readonly wsHandler: WebsocketHandler;
} {
  const { pool, limits } = options;
  /** Connections made in preHandler, waiting for the client's upgrade to complete. */
  const connected = new WeakMap<FastifyRequest, Extract<Outcome, { kind: 'open' }>>();

  const headersFor = (request: FastifyRequest): Record<string, string> => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || NOT_FORWARDED.has(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers['x-correlation-id'] = request.id;
    headers['traceparent'] = request.trace.traceparent;
    // Replaced, never appended, as for HTTP: request.ip is already the verdict on the client's own X-Forwarded-For.
    headers['x-forwarded-for'] = request.ip;
    return headers;
  };

  /** One attempt: the member's answer to the upgrade, or a rejection when it could not be reached. */
  const connectTo = (
    member: string,
    request: FastifyRequest,
  ): Promise<Omit<Outcome & { kind: 'open' }, 'leave'> | Extract<Outcome, { kind: 'answered' }>> =>
    new Promise((resolve, reject) => {
      const protocols = offeredProtocols(request.headers['sec-websocket-protocol']);
      const socket = new WebSocket(`${member.replace(/^http/, 'ws')}${request.url}`, protocols, {
        headers: headersFor(request),
        handshakeTimeout: limits.handshakeTimeoutMs,
        maxPayload: limits.maxPayloadBytes,
        closeTimeout: limits.closeTimeoutMs,
        followRedirects: false,
        perMessageDeflate: false,
      } as ConstructorParameters<typeof WebSocket>[2]);
      socket.once('open', () => {
        // Nothing is read from the service until the client is connected to take it.
        socket.pause();
        resolve({ kind: 'open', socket });
      });
      socket.once('unexpected-response', (upgrade, response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => {
          upgrade.destroy();
          resolve({ kind: 'answered', status: response.statusCode ?? 502, headers: response.headers, body: Buffer.concat(chunks) });
        });
        response.once('error', reject);
      });
      socket.once('error', reject);
    });

  const open = async (request: FastifyRequest): Promise<Outcome | { kind: 'failed'; cause: Error | undefined }> => {
    const tried = new Set<string>();
    let lastFailure: Error | undefined;
    while (tried.size < options.maxAttempts) {
      const member = pool.pick(tried);
      if (member === undefined) break;
      tried.add(member);
      const leave = pool.enter(member);
      let outcome: Awaited<ReturnType<typeof connectTo>> | undefined;
      try {
        await pool.call(member, async () => {
          outcome = await connectTo(member, request);
          return outcome.kind === 'open' ? 101 : outcome.status;
        });
      } catch (error) {
        leave();
        if (!isCircuitOpenError(error)) lastFailure = error instanceof Error ? error : new Error(String(error));
        continue;
      }
      if (outcome === undefined) throw new Error('unreachable: the pool resolved without calling the attempt');
      if (outcome.kind === 'answered') {
        leave();
        return outcome;
      }
      // Counted in flight for as long as the connection lasts: least-connections sees long-lived sockets.
      outcome.socket.once('close', leave);
      return { ...outcome, leave };
    }
    return { kind: 'failed', cause: lastFailure };
  };

  const preHandler: preHandlerAsyncHookHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.ws) return;
    const outcome = await open(request);
    if (outcome.kind === 'failed') {
      const retryAfterMs = outcome.cause ? undefined : pool.allOpenRetryAfterMs();
      if (retryAfterMs === undefined) throw upstreamUnavailable(pool.service, outcome.cause);
      reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
      throw upstreamCircuitOpen(pool.service, retryAfterMs);
    }
    if (outcome.kind === 'answered') {
      for (const name of ANSWER_HEADERS) {
        const value = outcome.headers[name];
        if (value !== undefined) reply.header(name, value);
      }
      return reply.code(outcome.status).send(outcome.body);
    }
    connected.set(request, outcome);
    answerWithSubprotocol(request, outcome.socket.protocol === '' ? null : outcome.socket.protocol);
    // The client may leave before its upgrade completes: the service's connection goes with it.
    request.raw.socket.once('close', () => {
      if (connected.delete(request)) closeWith(outcome.socket, CLOSE_CODES.GOING_AWAY, 'client went away');
    });
  };

  const wsHandler: WebsocketHandler = (client, request) => {
    const upstream = connected.get(request);
    connected.delete(request);
    if (upstream === undefined) {
      client.close(CLOSE_CODES.INTERNAL_ERROR, 'no service connection');
      return;
    }
    const service = upstream.socket;
    const relay = (to: Peer) => (data: RawData, isBinary: boolean) => {
      if (to.readyState !== WebSocket.OPEN) return;
      to.send(data, { binary: isBinary });
      // The client's socket bounds itself (websocket.ts); the service's is bounded here, the same way.
      if (to === service && service.bufferedAmount > limits.maxBufferedBytes) {
        closeWith(service, limits.bufferExceededCode, 'send buffer exceeded: the service reads too slowly');
        closeWith(peer, limits.bufferExceededCode, 'send buffer exceeded: the service reads too slowly');
      }
    };
    const peer: Peer = client;
    client.on('message', relay(service));
    service.on('message', relay(peer));
    client.once('close', (code, reason) => closeWith(service, sendable(code, CLOSE_CODES.GOING_AWAY), String(reason)));
    service.once('close', (code, reason) =>
      closeWith(peer, sendable(code, CLOSE_CODES.BAD_GATEWAY), code === 1006 ? 'the service connection was lost' : String(reason)),
    );
    service.on('error', (error) => request.log.debug({ err: error }, 'forwarded websocket: service connection error'));
    service.resume();
  };

  return { preHandler, wsHandler };
}
