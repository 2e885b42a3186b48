import type { FastifyReply, FastifyRequest } from 'fastify';
import { BlocksError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from '../rate-limit/port.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ANONYMOUS, TENANT_HEADER, type Caller } from './caller.ts';
import { httpErrors } from './errors.ts';

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
}

export type AccessHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface Access {
  /** onRequest: authenticates, checks context and scope, sets `request.caller` or throws a 401/403/429 problem. */
  readonly onRequest: AccessHook;
  /** onResponse: counts the refusals of `client` routes as failed attempts. */
  readonly onResponse: AccessHook;
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;
/** Longest address list kept for throttling; expired entries are swept when it is reached. */
const MAX_THROTTLED = 10_000;

/**
 * The zero-trust decision every request of every Blocks process goes through (gateway and each
 * service): identity (a valid, unrevoked key or token), context (the tenant's address, time and
 * device rules), then resource (the route's scope, least privilege). Only `public` routes skip it.
 *
 * Failed authentications are counted per source address; past `failedAttempts`, that address's
 * credentialed requests get 429 until the allowance refills. The count is shared (Redis when
 * configured); the block itself is remembered per process, which each replica learns on the first
 * failure it sees past the limit.
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
  const blockedUntil = new Map<string, number>();

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

  const countFailure = async (request: FastifyRequest, reason: string): Promise<void> => {
    failures.inc({ reason });
    try {
      const decision = await options.limiter.take(`authfail:${request.ip}`, options.failedAttempts);
      // The failure that uses the allowance up blocks at once: the next request from that address is refused, not tried.
      if (!decision.allowed) block(request.ip, decision.retryAfterMs);
      else if (decision.remaining === 0) block(request.ip, untilNextAllowedMs(decision, options.failedAttempts));
    } catch (error) {
      // The throttle is a defence in depth: a limiter outage must not turn a 401 into a 5xx.
      request.log.warn({ err: error }, 'could not count a failed authentication');
    }
  };

  const block = (ip: string, forMs: number): void => {
    const now = clock.now();
    if (blockedUntil.size >= MAX_THROTTLED) for (const [address, until] of blockedUntil) if (until <= now) blockedUntil.delete(address);
    if (blockedUntil.size < MAX_THROTTLED) blockedUntil.set(ip, now + forMs);
  };

  const refuseIfThrottled = (request: FastifyRequest, reply: FastifyReply): void => {
    const until = blockedUntil.get(request.ip);
    if (until === undefined) return;
    const waitMs = until - clock.now();
    if (waitMs <= 0) {
      blockedUntil.delete(request.ip);
      return;
    }
    throttled.inc();
    audit(request, 429, 'throttled', null);
    const seconds = Math.ceil(waitMs / 1000);
    reply.header('retry-after', String(seconds));
    throw accessError('AUTHENTICATION_THROTTLED', `Too many failed authentications from this address; retry in ${seconds} s.`);
  };

  const unauthenticated = async (
    request: FastifyRequest,
    reply: FastifyReply,
    reason: string,
    error: BlocksError,
    tokenError = false,
  ): Promise<never> => {
    await countFailure(request, reason);
    audit(request, error.status, reason, null);
    reply.header('www-authenticate', tokenError ? 'Bearer realm="blocks", error="invalid_token"' : 'Bearer realm="blocks"');
    throw error;
  };

  const onRequest: AccessHook = async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    // No route matched: the not-found handler answers, and says nothing about what exists.
    if (scope === undefined || scope === PUBLIC_SCOPE) {
      request.caller = ANONYMOUS;
      return;
    }
    refuseIfThrottled(request, reply);
    if (scope === CLIENT_SCOPE) {
      request.caller = ANONYMOUS;
      return;
    }
    const credential = credentialOf(request);
    if (credential === undefined) {
      return unauthenticated(
        request,
        reply,
        'missing',
        accessError('AUTHENTICATION_REQUIRED', 'Send an access token or API key: Authorization: Bearer <token>, or x-api-key.'),
      );
    }
    if (credential === 'ambiguous') {
      return unauthenticated(
        request,
        reply,
        'ambiguous',
        accessError('INVALID_CREDENTIALS', 'Send one credential: Authorization or x-api-key, not both.'),
      );
    }
    let caller: Caller | null;
    try {
      caller = await options.authenticator.authenticate(credential);
    } catch (error) {
      if (error instanceof BlocksError && error.status === 401) return unauthenticated(request, reply, 'invalid_token', error, true);
      throw error;
    }
    if (caller === null) {
      return unauthenticated(
        request,
        reply,
        'invalid_key',
        accessError('INVALID_CREDENTIALS', 'The API key is not valid: unknown, revoked or expired.'),
      );
    }
    const claimedTenant = request.headers[TENANT_HEADER];
    if (claimedTenant !== undefined && claimedTenant !== caller.tenant) {
      return forbid(
        request,
        caller,
        'tenant_mismatch',
        accessError('TENANT_MISMATCH', `Header ${TENANT_HEADER} names another tenant than the credential's.`),
      );
    }
    if (options.contextPolicy) {
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

  const forbid = (request: FastifyRequest, caller: Caller, reason: string, error: BlocksError): never => {
    denied.inc({ reason });
    audit(request, error.status, reason, caller);
    throw error;
  };

  const onResponse: AccessHook = async (request, reply) => {
    // Every refused token request counts, not only bad client secrets: a wrong password or a stolen
    // refresh token is an invalid_grant 400 (RFC 6749 §5.2), and guessing those must be throttled too.
    const status = reply.statusCode;
    if (status >= 400 && status < 500 && status !== 429 && request.routeOptions.config.scope === CLIENT_SCOPE) {
      const reason = status === 401 ? 'invalid_client' : 'refused_token_request';
      await countFailure(request, reason);
      audit(request, status, reason, null);
    }
  };

  return { onRequest, onResponse };
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
  return { kind: isJwtShaped(value) ? 'jwt' : 'api_key', value };
}

/** How long until `policy` admits one more, after `decision` took the last of it (GCRA: one interval past the burst's start). */
const untilNextAllowedMs = (decision: RateLimitDecision, policy: RateLimitPolicy): number => {
  const intervalMs = policy.periodMs / policy.limit;
  return Math.max(1, Math.ceil(decision.resetMs - ((policy.burst ?? policy.limit) - 1) * intervalMs));
};

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
  | 'AUTHENTICATION_THROTTLED';

const accessError = (code: AccessErrorCode, detail: string, extensions?: Record<string, unknown>): BlocksError =>
  new BlocksError(code, httpErrors[code].status, detail, extensions ? { extensions } : {});
