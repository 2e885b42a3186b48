import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from '../logger.ts';
import { idempotencyKeyInUse, idempotencyKeyInvalid, idempotencyKeyReused, idempotentAnswerNotKept } from './errors.ts';
import type { IdempotencyScope, IdempotencyStore, StoredAnswer } from './store.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** False: this route ignores `Idempotency-Key` (it handles retries itself, or repeats harmlessly). */
    idempotency?: boolean;
  }
  interface FastifyRequest {
    /** The key this request owns while it runs; null when it carries none or is not covered. */
    idempotency: IdempotencyScope | null;
  }
}

export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Set on an answer replayed from the store, so a client can tell a retry's answer from a first one. */
export const REPLAYED_HEADER = 'idempotent-replayed';
export const MAX_KEY_LENGTH = 255;

/** POST and PATCH are the methods a retry can repeat the effect of (RFC 9110 §9.2.2); the others are idempotent already. */
const COVERED_METHODS = new Set(['POST', 'PATCH']);
/** Printable ASCII, as an sf-string (RFC 8941) holds. */
const KEY_PATTERN = /^[\x20-\x7e]+$/;
/** Answers that say "try again", whose retry must run again rather than get them replayed. */
const NOT_STORED = new Set([408, 409, 425, 429]);
/** Headers that describe one delivery, not the answer: a replay gets its own. */
const PER_DELIVERY = new Set([
  'x-correlation-id',
  'traceparent',
  'content-length',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'date',
]);
const IN_USE_RETRY_AFTER_S = 1;

export interface IdempotencyPluginOptions {
  readonly store: IdempotencyStore;
  readonly logger: Logger;
}

/** The request as the key promises it: the same key with another method, URL or body is not a retry. */
function fingerprintOf(request: FastifyRequest): string {
  const body = request.body === undefined ? '' : JSON.stringify(request.body);
  return createHash('sha256').update(`${request.method}\n${request.url}\n`).update(body).digest('base64url');
}

/** The key of a request the layer covers, or undefined: not a covered method, route or caller, or no key. */
function keyOf(request: FastifyRequest): string | undefined {
  const header = request.headers[IDEMPOTENCY_HEADER];
  if (header === undefined || !COVERED_METHODS.has(request.method)) return undefined;
  const config = request.routeOptions.config;
  // The gateway's pass-through: the service behind it keeps the key, once, for every replica.
  if (config.idempotency === false || config.scope === 'upstream') return undefined;
  if (request.caller.subject === null) return undefined;
  if (typeof header !== 'string' || header.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(header)) {
    throw idempotencyKeyInvalid(MAX_KEY_LENGTH);
  }
  return header;
}

/** An answer the server said must not be stored anywhere (a created key's secret, a token). */
const holdsSecret = (headers: Readonly<Record<string, string>>): boolean => /\bno-store\b/i.test(headers['cache-control'] ?? '');

function replay(reply: FastifyReply, answer: StoredAnswer): FastifyReply {
  if (holdsSecret(answer.headers)) throw idempotentAnswerNotKept(answer.status);
  return reply.code(answer.status).headers(answer.headers).header(REPLAYED_HEADER, 'true').send(Buffer.from(answer.body));
}

/**
 * The answer as a replay will give it: the reply's status and headers so far, then `extraHeaders`
 * (less those of one delivery), and `payload`. A route that stores its own answer (in its
 * transaction) builds it with this, passing the headers it will send it with, so that a replay
 * matches what the plugin would have stored.
 */
export function storedAnswerOf(
  reply: FastifyReply,
  payload: string | Buffer,
  extraHeaders: Readonly<Record<string, string>> = {},
): StoredAnswer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries({ ...reply.getHeaders(), ...extraHeaders })) {
    if (value === undefined || PER_DELIVERY.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  // Kept without its body: the secret never rests in the table, and a retry learns the request completed.
  if (holdsSecret(headers))
    return { status: reply.statusCode, headers: { 'cache-control': headers['cache-control'] as string }, body: Buffer.alloc(0) };
  return { status: reply.statusCode, headers, body: typeof payload === 'string' ? Buffer.from(payload) : payload };
}

/**
 * `Idempotency-Key` on every POST and PATCH route of the app it is registered on (a route opts
 * out with `config: { idempotency: false }`): the first request with a key runs, and its answer
 * is stored before it is sent; a retry gets that answer again (`Idempotent-Replayed: true`), a
 * request while the first still runs gets 409 IDEMPOTENCY_KEY_IN_USE, and the key sent with
 * another request 422 IDEMPOTENCY_KEY_REUSED. A 5xx or a "try again" answer (408, 409, 425, 429)
 * is not stored, so a retry runs again; nor is a stream, which is not replayed: its key is free
 * once it ends. An answer marked `Cache-Control: no-store` is kept without its body (a secret never
 * rests in the table): its retry gets 410 IDEMPOTENT_ANSWER_NOT_KEPT. Requests without the header
 * pay one property read.
 */
export const idempotencyPlugin = fp<IdempotencyPluginOptions>(
  async (app: FastifyInstance, options) => {
    const { store } = options;
    const log = options.logger.child({ component: 'idempotency' });
    app.decorateRequest('idempotency', null);

    /** Resolves true when it answered the request itself (a replay). */
    const claim = async (request: FastifyRequest, reply: FastifyReply, key: string): Promise<boolean> => {
      const scope: IdempotencyScope = {
        tenant: request.caller.tenant,
        principal: request.caller.apiKeyId ?? (request.caller.subject as string),
        key,
      };
      const claimed = await store.begin(scope, fingerprintOf(request));
      if (claimed.kind === 'owned') {
        request.idempotency = scope;
        return false;
      }
      if (claimed.kind === 'mismatch') throw idempotencyKeyReused();
      if (claimed.kind === 'in_flight') {
        reply.header('retry-after', String(IN_USE_RETRY_AFTER_S));
        throw idempotencyKeyInUse(IN_USE_RETRY_AFTER_S);
      }
      replay(reply, claimed.answer);
      return true;
    };

    const storeAnswer = async (
      request: FastifyRequest,
      reply: FastifyReply,
      scope: IdempotencyScope,
      payload: string | Buffer,
    ): Promise<void> => {
      request.idempotency = null;
      try {
        // Stored before a byte is sent: a client that has the answer can always get it again.
        await store.complete(scope, storedAnswerOf(reply, payload));
      } catch (error) {
        // The request ran; freeing the key could run it twice. It stays in flight (409) until the window ends.
        log.error({ err: error, key: scope.key }, 'storing an idempotent answer failed');
      }
    };

    // Callback-style hooks: a request without the header passes through without a promise.
    // preHandler: the caller is known (onRequest) and the body parsed and valid, so the
    // fingerprint covers it and a malformed request never holds a key.
    app.addHook('preHandler', (request, reply, done) => {
      let key: string | undefined;
      try {
        key = keyOf(request);
      } catch (error) {
        done(error as Error);
        return;
      }
      if (key === undefined) return done();
      // A hook that answered does not call done (fastify's rule for callback hooks).
      claim(request, reply, key).then((replied) => (replied ? undefined : done()), done);
    });

    app.addHook('onSend', (request, reply, payload, done) => {
      const scope = request.idempotency;
      // undefined too: a request fastify answers before routing (a bad URL, a preflight) may lack the decorator.
      if (!scope) return done(null, payload);
      const storable = typeof payload === 'string' || Buffer.isBuffer(payload);
      // A stream (or an answer asking for a retry) frees its key in onResponse instead.
      if (!storable || reply.statusCode >= 500 || NOT_STORED.has(reply.statusCode)) return done(null, payload);
      void storeAnswer(request, reply, scope, payload).finally(() => done(null, payload));
    });

    app.addHook('onResponse', (request, _reply, done) => {
      const scope = request.idempotency;
      // undefined too: a request fastify answers before routing (a bad URL, a preflight) may lack the decorator.
      if (!scope) return done();
      request.idempotency = null;
      store
        .release(scope)
        .catch((error: unknown) => log.warn({ err: error, key: scope.key }, 'freeing an idempotency key failed'))
        .finally(() => done());
    });
  },
  { name: 'blocks-idempotency' },
);
