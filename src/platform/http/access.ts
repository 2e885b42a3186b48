import type { FastifyReply, FastifyRequest } from 'fastify';
import { BlocksError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { RateLimiter, RateLimitPolicy } from '../rate-limit/port.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ANONYMOUS, TENANT_HEADER, type Caller } from './caller.ts';
import { httpErrors } from './errors.ts';
import { createFailedAttempts, type Reservation } from './failed-attempts.ts';
import { isWebSocketUpgrade, webSocketCredentialOf } from './websocket-credentials.ts';
import { ACT_FOR_HEADER, ACT_FOR_SCOPE, decodeActingFor, type Delegation } from './delegation.ts';

/** A credential as it arrived: a JWT, or anything else in the same places (an API key). */
export interface Credential {
  readonly kind: 'jwt' | 'api_key';
  readonly value: string;
}

/**
 * The identity half of the decision (implemented by core/identity): who a credential speaks for.
 * Resolves null for a key that is unknown, revoked or expired; throws a 401 BlocksError saying
 * which check a token failed, or a 503 when an issuer's keys cannot be fetched.
 */
export interface Authenticator {
  readonly authenticate: (credential: Credential) => Promise<Caller | null>;
}

/** What the context half of the decision looks at besides the caller. */
export interface RequestContext {
  readonly ip: string;
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** `x-blocks-device`, when sent. */
  readonly deviceId: string | undefined;
  /** SHA-256 fingerprint of the client certificate, when the connection presented one. */
  readonly certificateFingerprint: string | undefined;
}

/** The context half (implemented by core/identity): null to allow, else the reason for refusing. */
export interface ContextPolicy {
  readonly check: (caller: Caller, context: RequestContext) => Promise<string | null> | string | null;
}

/** One refused request, for the audit trail. Never carries the credential. */
export interface AccessDenial {
  readonly reason: string;
  readonly status: number;
  readonly tenant: string | null;
  readonly subject: string | null;
  readonly ip: string;
  readonly method: string;
  readonly route: string;
  readonly correlationId: string;
  readonly traceparent: string | undefined;
}

/**
 * The scopes a route may declare besides a real one:
 * - `public`: anyone, no credential looked at (health, and metrics and docs when configured so);
 * - `client`: no bearer credential, the route authenticates the OAuth client itself (`/oauth/token`);
 *   its refusals (4xx but 429) still count as failed attempts;
 * - `upstream`: any authenticated caller; the service the gateway passes the request to decides the scope.
 */
export const PUBLIC_SCOPE = 'public';
export const CLIENT_SCOPE = 'client';
export const UPSTREAM_SCOPE = 'upstream';

export interface AccessOptions {
  readonly authenticator: Authenticator;
  readonly contextPolicy?: ContextPolicy;
  /** Called for every refused request; must not throw or block (the audit writer batches). */
  readonly onDenied: (denial: AccessDenial) => void;
  /** Counts failed authentications per source address; shared through Redis like the rate limits. */
  readonly limiter: RateLimiter;
  readonly failedAttempts: RateLimitPolicy;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Resolves the caller a service acts for (delegation.ts); without it, a request naming one is refused. */
  readonly delegation?: Delegation;
}

export type AccessHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** Redeems WebSocket tickets (src/platform/websocket/tickets.ts). */
export interface TicketRedeemer {
  /**
   * The caller a ticket was issued to, or null for one that is unknown, used or expired. With
   * `consume` the ticket is spent (at most one redemption ever gets the caller); without, it is
   * only looked at, for a gateway passing the upgrade on to the service that consumes it.
   */
  redeem(ticket: string, options: { readonly consume: boolean }): Promise<Caller | null>;
}

export interface Access {
  /** onRequest: authenticates, checks context and scope, sets `request.caller` or throws a 401/403/429 problem. */
  readonly onRequest: AccessHook;
  /** onResponse: settles the attempt a `client` route reserved: given back on success, counted as failed on a refusal. */
  readonly onResponse: AccessHook;
  /**
   * The same decision that also takes a WebSocket ticket (`?ticket=`) on an upgrade to a WebSocket
   * route, redeemed by `tickets`. Without it a ticket is refused like an unknown key.
   */
  readonly withTickets?: (tickets: TicketRedeemer) => Access;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
/** How long a credential that passed stays known-good here: its requests reserve no attempt meanwhile. */
const KNOWN_GOOD_MS = 60_000;
/** Known-good credentials remembered at once; the oldest is forgotten first (and then reserves again, once). */
const MAX_KNOWN_GOOD = 10_000;

/** What checking one credential came to, shared by the requests that sent it at the same time from one address. */
type Checked =
  | { readonly outcome: 'caller'; readonly caller: Caller }
  | { readonly outcome: 'refused'; readonly error?: BlocksError }
  | { readonly outcome: 'throttled'; readonly waitMs: number }
  | { readonly outcome: 'error'; readonly error: unknown };

/**
 * The zero-trust decision every request of every Blocks process goes through (gateway and each
 * service): identity (a valid, unrevoked key or token), context (the tenant's address, time and
 * device rules), then resource (the route's scope, least privilege). Only `public` routes skip it.
 *
 * Failed authentications are counted per source address (failed-attempts.ts), each attempt when
 * it starts: a credential this process has not seen pass lately, and every request to a `client`
 * route, reserve one attempt before anything is checked and give it back if it succeeds. A
 * credential that passed in the last minute reserves nothing, so a valid key's steady traffic
 * costs no limiter call; and requests sending the same unknown credential at once from one
 * address share one check and one reservation, so a client's first burst with a new key is not
 * mistaken for guessing. Past `failedAttempts`, the address is refused (429) until the allowance
 * refills; the allowance is shared (Redis when configured), and each replica learns of the block
 * at the first reservation it is refused.
 */
export function createAccess(options: AccessOptions): Access {
  const { metrics, clock } = options;
  const failures = metrics.counter(
    'blocks_failed_authentication_attempts_total',
    'Requests whose credential was missing, unknown, revoked, expired or invalid, by reason',
    ['reason'],
  );
  const denied = metrics.counter('blocks_access_denied_total', 'Authenticated requests refused by context or scope, by reason', ['reason']);
  const throttled = metrics.counter('blocks_authentication_throttled_total', 'Requests refused because their source failed too often', []);
  const attempts = createFailedAttempts({
    limiter: options.limiter,
    policy: options.failedAttempts,
    clock,
  });
  // Insertion order is the order credentials passed: the first entry is the oldest.
  const knownGood = new Map<string, number>();
  const checking = new Map<string, Promise<Checked>>();
  /** The reservation of each `client` route request, settled when it is answered. */
  const reserved = new WeakMap<FastifyRequest, Reservation>();

  const audit = (request: FastifyRequest, status: number, reason: string, caller: Caller | null): void => {
    options.onDenied({
      reason,
      status,
      tenant: caller?.tenant ?? null,
      subject: caller?.subject ?? null,
      ip: request.ip,
      method: request.method,
      route: request.routeOptions.url ?? request.url.split('?')[0] ?? '/',
      correlationId: request.id,
      traceparent: request.trace.traceparent,
    });
  };

  const warnOf =
    (request: FastifyRequest) =>
    (error: unknown): void =>
      request.log.warn({ err: error }, 'the failed-attempt throttle could not reach its limiter');

  const throttle = (request: FastifyRequest, reply: FastifyReply, waitMs: number): never => {
    throttled.inc();
    audit(request, 429, 'throttled', null);
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    reply.header('retry-after', String(seconds));
    throw accessError('AUTHENTICATION_THROTTLED', `Too many failed authentications from this address; retry in ${seconds} s.`);
  };

  /** A refused credential: counted as a failed attempt unless its reservation already holds it, audited, answered 401 with a challenge. */
  const unauthenticated = async (
    request: FastifyRequest,
    reply: FastifyReply,
    refusal: { reason: string; error: BlocksError; counted?: boolean; tokenError?: boolean },
  ): Promise<never> => {
    failures.inc({ reason: refusal.reason });
    if (refusal.counted !== true) await attempts.countFailure(request.ip, warnOf(request));
    audit(request, refusal.error.status, refusal.reason, null);
    reply.header(
      'www-authenticate',
      refusal.tokenError === true ? 'Bearer realm="blocks", error="invalid_token"' : 'Bearer realm="blocks"',
    );
    throw refusal.error;
  };

  const check = async (credential: Credential): Promise<Checked> => {
    try {
      const caller = await options.authenticator.authenticate(credential);
      return caller === null ? { outcome: 'refused' } : { outcome: 'caller', caller };
    } catch (error) {
      if (error instanceof BlocksError && error.status === 401) return { outcome: 'refused', error };
      return { outcome: 'error', error };
    }
  };

  const remember = (value: string): void => {
    knownGood.delete(value);
    if (knownGood.size >= MAX_KNOWN_GOOD) knownGood.delete(knownGood.keys().next().value as string);
    knownGood.set(value, clock.now() + KNOWN_GOOD_MS);
  };

  /** Checks a credential not known here with one attempt reserved first: given back unless the credential is refused. */
  const checkReserved = async (request: FastifyRequest, credential: Credential): Promise<Checked> => {
    const reservation = await attempts.reserve(request.ip, warnOf(request));
    if (reservation.throttled) return { outcome: 'throttled', waitMs: reservation.waitMs };
    const checked = await check(credential);
    // An issuer that cannot be reached is not the caller's failure: its attempt is given back too.
    if (checked.outcome === 'refused') await reservation.failed();
    else await reservation.succeeded();
    if (checked.outcome === 'caller') remember(credential.value);
    return checked;
  };

  /**
   * What `credential` comes to, and whether a failure of it is already counted. A credential that
   * passed here lately is checked straight away (the steady state of a valid key: no limiter call).
   * Any other reserves an attempt first; requests sending it at once from one address wait for
   * that one check, and a refusal is counted against each of them after (the first by its reservation).
   */
  const identify = async (request: FastifyRequest, credential: Credential): Promise<{ checked: Checked; counted: boolean }> => {
    const until = knownGood.get(credential.value);
    if (until !== undefined && until > clock.now()) {
      const checked = await check(credential);
      if (checked.outcome !== 'caller') knownGood.delete(credential.value);
      return { checked, counted: false };
    }
    const key = `${request.ip} ${credential.value}`;
    const pending = checking.get(key);
    if (pending !== undefined) return { checked: await pending, counted: false };
    const first = checkReserved(request, credential).finally(() => checking.delete(key));
    checking.set(key, first);
    return { checked: await first, counted: true };
  };

  /** The caller a key or token speaks for, or a 401/429/503 thrown. */
  const callerOfCredential = async (request: FastifyRequest, reply: FastifyReply, credential: Credential): Promise<Caller> => {
    const { checked, counted } = await identify(request, credential);
    switch (checked.outcome) {
      case 'throttled':
        return throttle(request, reply, checked.waitMs);
      case 'error':
        if (checked.error instanceof BlocksError && typeof checked.error.extensions['retry_after_s'] === 'number') {
          reply.header('retry-after', String(checked.error.extensions['retry_after_s']));
        }
        throw checked.error;
      case 'refused':
        return unauthenticated(
          request,
          reply,
          checked.error
            ? { reason: 'invalid_token', error: checked.error, counted, tokenError: true }
            : {
                reason: 'invalid_key',
                error: accessError('INVALID_CREDENTIALS', 'The API key is not valid: unknown, revoked or expired.'),
                counted,
              },
        );
    }
    return checked.caller;
  };

  /**
   * The caller a WebSocket ticket speaks for. Every redemption reserves an attempt (a ticket is
   * never known-good: it is good once), so guessing tickets is throttled like guessing keys.
   */
  const callerOfTicket = async (
    request: FastifyRequest,
    reply: FastifyReply,
    ticket: string,
    tickets: TicketRedeemer | undefined,
    consume: boolean,
  ): Promise<Caller> => {
    const refused = (): Promise<never> =>
      unauthenticated(request, reply, {
        reason: 'invalid_ticket',
        error: accessError('INVALID_CREDENTIALS', 'The WebSocket ticket is not valid: unknown, already used or expired.'),
        counted: true,
      });
    const reservation = await attempts.reserve(request.ip, warnOf(request));
    if (reservation.throttled) return throttle(request, reply, reservation.waitMs);
    let caller: Caller | null;
    try {
      caller = tickets === undefined ? null : await tickets.redeem(ticket, { consume });
    } catch (error) {
      // The store did not answer: not the caller's failure.
      await reservation.succeeded();
      throw error;
    }
    if (caller === null) {
      await reservation.failed();
      return refused();
    }
    await reservation.succeeded();
    return caller;
  };

  const decide =
    (tickets: TicketRedeemer | undefined): AccessHook =>
    async (request, reply) => {
      const scope = request.routeOptions.config.scope;
      // No route matched: the not-found handler answers, and says nothing about what exists.
      if (scope === undefined || scope === PUBLIC_SCOPE) {
        request.caller = ANONYMOUS;
        return;
      }
      const blockedMs = attempts.blockedFor(request.ip);
      if (blockedMs > 0) return throttle(request, reply, blockedMs);
      if (scope === CLIENT_SCOPE) {
        request.caller = ANONYMOUS;
        // The route checks the client (and the password or refresh token) itself, so every request is an attempt.
        const reservation = await attempts.reserve(request.ip, warnOf(request));
        if (reservation.throttled) return throttle(request, reply, reservation.waitMs);
        reserved.set(request, reservation);
        return;
      }
      const credential = presentedCredentialOf(request);
      if (credential === undefined) {
        return unauthenticated(request, reply, {
          reason: 'missing',
          error: accessError('AUTHENTICATION_REQUIRED', 'Send an access token or API key: Authorization: Bearer <token>, or x-api-key.'),
        });
      }
      if (credential === 'ambiguous') {
        return unauthenticated(request, reply, {
          reason: 'ambiguous',
          error: accessError(
            'INVALID_CREDENTIALS',
            'Send one credential: Authorization, x-api-key, a bearer subprotocol or a ticket, not several.',
          ),
        });
      }
      // A gateway passing an upgrade on only looks at the ticket: the service behind it consumes it.
      const authenticated =
        credential.kind === 'ticket'
          ? await callerOfTicket(request, reply, credential.value, tickets, scope !== UPSTREAM_SCOPE)
          : await callerOfCredential(request, reply, credential);
      const actingFor = request.headers[ACT_FOR_HEADER];
      const caller = actingFor === undefined ? authenticated : await delegated(request, authenticated, actingFor);
      const claimedTenant = request.headers[TENANT_HEADER];
      if (claimedTenant !== undefined && claimedTenant !== caller.tenant) {
        return forbid(
          request,
          caller,
          'tenant_mismatch',
          accessError('TENANT_MISMATCH', `Header ${TENANT_HEADER} names another tenant than the credential's.`),
        );
      }
      // A delegated call passed the tenant's context rules where it first arrived; here it comes from the service.
      if (options.contextPolicy && actingFor === undefined) {
        const reason = await options.contextPolicy.check(caller, contextOf(request, clock.now()));
        if (reason !== null) {
          return forbid(
            request,
            caller,
            reason,
            accessError('ACCESS_DENIED', `Access refused by the tenant's rules: ${reason}.`, { reason }),
          );
        }
      }
      if (scope !== UPSTREAM_SCOPE && !caller.scopes.includes(scope)) {
        reply.header('www-authenticate', `Bearer realm="blocks", error="insufficient_scope", scope="${scope}"`);
        return forbid(
          request,
          caller,
          'insufficient_scope',
          accessError('INSUFFICIENT_SCOPE', `This route needs scope ${scope}.`, { scope }),
        );
      }
      request.caller = caller;
    };

  /** The caller a service names in {@link ACT_FOR_HEADER}, as identity resolves it now; a 403 for anyone else sending one. */
  const delegated = async (request: FastifyRequest, service: Caller, header: string | string[]): Promise<Caller> => {
    const refuse = (reason: string, detail: string): never =>
      forbid(request, service, reason, accessError('DELEGATION_REFUSED', detail, { reason }));
    if (!service.scopes.includes(ACT_FOR_SCOPE)) {
      return refuse('delegation_not_allowed', `Only a service identity (scope ${ACT_FOR_SCOPE}) may act for another caller.`);
    }
    const claim = typeof header === 'string' ? decodeActingFor(header) : null;
    if (claim === null) return refuse('delegation_malformed', `Header ${ACT_FOR_HEADER} does not name a caller.`);
    const caller = options.delegation === undefined ? null : await options.delegation.resolve(claim);
    if (caller === null) return refuse('delegated_principal_gone', 'The caller acted for is unknown, revoked or expired.');
    return caller;
  };

  const forbid = (request: FastifyRequest, caller: Caller, reason: string, error: BlocksError): never => {
    denied.inc({ reason });
    audit(request, error.status, reason, caller);
    throw error;
  };

  const onResponse: AccessHook = async (request, reply) => {
    const reservation = reserved.get(request);
    if (reservation === undefined || reservation.throttled) return;
    reserved.delete(request);
    // Every refused token request counts, not only bad client secrets: a wrong password or a stolen
    // refresh token is an invalid_grant 400 (RFC 6749 §5.2), and guessing those must be throttled too.
    // Anything else (a token, a rate limit's 429, a 5xx) gives the attempt back.
    const status = reply.statusCode;
    if (status >= 400 && status < 500 && status !== 429) {
      const reason = status === 401 ? 'invalid_client' : 'refused_token_request';
      failures.inc({ reason });
      await reservation.failed();
      audit(request, status, reason, null);
    } else {
      await reservation.succeeded();
    }
  };

  const withTickets = (tickets: TicketRedeemer): Access => ({ onRequest: decide(tickets), onResponse, withTickets });
  return { onRequest: decide(undefined), onResponse, withTickets };
}

function credentialOf(request: FastifyRequest): Credential | 'ambiguous' | undefined {
  const { authorization } = request.headers;
  const apiKey = request.headers['x-api-key'];
  if ((authorization !== undefined && apiKey !== undefined) || Array.isArray(apiKey)) return 'ambiguous';
  if (apiKey !== undefined) return apiKey === '' ? undefined : { kind: 'api_key', value: apiKey };
  if (authorization === undefined) return undefined;
  const value = BEARER.exec(authorization)?.[1];
  // Another scheme (Basic, Digest…) is not a credential these routes take: refused like a bad key.
  if (value === undefined) return { kind: 'api_key', value: '' };
  return bearerCredential(value);
}

const bearerCredential = (value: string): Credential => ({ kind: isJwtShaped(value) ? 'jwt' : 'api_key', value });

/**
 * The one credential a request presents: in its headers, or, on a WebSocket upgrade, in a bearer
 * subprotocol or a ticket (websocket-credentials.ts). More than one place is ambiguous.
 */
function presentedCredentialOf(request: FastifyRequest): Credential | { kind: 'ticket'; value: string } | 'ambiguous' | undefined {
  const fromHeaders = credentialOf(request);
  if (!isWebSocketUpgrade(request)) return fromHeaders;
  const fromUpgrade = webSocketCredentialOf(request);
  if (fromUpgrade === undefined) return fromHeaders;
  if (fromHeaders !== undefined || fromUpgrade === 'ambiguous') return 'ambiguous';
  return fromUpgrade.kind === 'ticket' ? { kind: 'ticket', value: fromUpgrade.value } : bearerCredential(fromUpgrade.value);
}

/** Three dot-separated parts: a JWS in compact form. API keys (`bk_…`) never contain a dot. */
const isJwtShaped = (value: string): boolean => /^[^.]+\.[^.]+\.[^.]*$/.test(value);

function contextOf(request: FastifyRequest, now: number): RequestContext {
  const device = request.headers['x-blocks-device'];
  const socket = request.raw.socket as { getPeerCertificate?: () => { fingerprint256?: string } | null };
  const certificate = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : null;
  return {
    ip: request.ip,
    now,
    deviceId: typeof device === 'string' && device !== '' ? device : undefined,
    certificateFingerprint: certificate?.fingerprint256 || undefined,
  };
}

type AccessErrorCode =
  | 'AUTHENTICATION_REQUIRED'
  | 'INVALID_CREDENTIALS'
  | 'TENANT_MISMATCH'
  | 'ACCESS_DENIED'
  | 'INSUFFICIENT_SCOPE'
  | 'AUTHENTICATION_THROTTLED'
  | 'DELEGATION_REFUSED';

const accessError = (code: AccessErrorCode, detail: string, extensions?: Record<string, unknown>): BlocksError =>
  new BlocksError(code, httpErrors[code].status, detail, extensions ? { extensions } : {});
