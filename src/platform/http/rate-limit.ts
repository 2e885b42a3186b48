import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.ts';
import { BlocksError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { RATE_LIMIT_ERRORS, RateLimiterUnavailableError } from '../rate-limit/errors.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from '../rate-limit/port.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export interface RateLimitOptions {
  readonly limiter: RateLimiter;
  readonly config: Config['rate_limits'];
  readonly logger: Logger;
  readonly metrics: Metrics;
}

interface NamedPolicy {
  readonly name: string;
  readonly policy: RateLimitPolicy;
  /** `RateLimit-Policy` item, e.g. `"default";q=1000;w=60`, computed once. */
  readonly header: string;
}

/** Scopes with no allowance of their own: anonymous probes, and the gateway's pass-through (the service behind it decides). */
const UNLIMITED_SCOPES = new Set(['public', 'upstream']);

/** An onRequest hook; built once per process (its counters are process-wide) and added to each of its apps. */
export type RateLimitHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/**
 * Per-caller rate limits for every route: the caller's tier allowance (by tenant), then the
 * route scope's own allowance if configured. The caller is its API key or its token's subject, else its address. Limited
 * answers carry the IETF draft's `RateLimit-Policy` and `RateLimit` fields; a refusal is a 429
 * problem with `Retry-After`.
 *
 * Routes the gateway proxies are limited once, where they are served: in `blocks start` that is
 * in this same app; split across processes it is the service, whose limiter is shared through Redis.
 *
 * @throws Error at start for a configuration naming a tier that does not exist.
 */
export function createRateLimitHook(options: RateLimitOptions): RateLimitHook {
  const { config, limiter, logger } = options;
  if (!config.enabled) return async () => undefined;
  const named = (name: string, policy: { limit: number; period: number; burst?: number | undefined }): NamedPolicy => ({
    name,
    policy: { limit: policy.limit, periodMs: policy.period, burst: policy.burst },
    header: `"${name}";q=${policy.limit};w=${Math.max(1, Math.round(policy.period / 1000))}`,
  });
  const tiers = new Map(Object.entries(config.tiers).map(([name, policy]) => [name, named(name, policy)] as const));
  if (!tiers.has('default')) throw new Error('rate_limits.tiers must define a `default` tier');
  for (const [tenant, tier] of Object.entries(config.tenant_tiers)) {
    if (!tiers.has(tier))
      throw new Error(`rate_limits.tenant_tiers.${tenant} names tier '${tier}', which rate_limits.tiers does not define`);
  }
  const scopes = new Map(Object.entries(config.scopes).map(([scope, policy]) => [scope, named(`scope:${scope}`, policy)] as const));
  const limited = options.metrics.counter('blocks_rate_limited_total', 'Requests refused by a rate limit, by policy', ['policy']);
  const storeFailures = options.metrics.counter(
    'blocks_rate_limiter_failures_total',
    'Rate-limit decisions the shared store did not answer, by outcome (open: let through, closed: refused)',
    ['outcome'],
  );

  const decide = async (policy: NamedPolicy, identity: string, request: FastifyRequest): Promise<RateLimitDecision | undefined> => {
    try {
      return await limiter.take(`${policy.name}:${identity}`, policy.policy);
    } catch (error) {
      if (!(error instanceof RateLimiterUnavailableError)) throw error;
      storeFailures.inc({ outcome: config.on_store_failure });
      request.log.warn({ err: error, policy: policy.name }, 'rate limiter unavailable');
      if (config.on_store_failure === 'closed') throw error;
      return undefined;
    }
  };

  const onRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined || UNLIMITED_SCOPES.has(scope)) return;
    const { caller } = request;
    const identity = caller.subject === null ? `ip:${request.ip}` : `${caller.kind}:${caller.tenant}:${caller.subject}`;
    const tier = tiers.get(config.tenant_tiers[request.caller.tenant] ?? 'default') as NamedPolicy;
    const scoped = scopes.get(scope);
    for (const policy of scoped === undefined ? [tier] : [tier, scoped]) {
      const decision = await decide(policy, identity, request);
      if (decision === undefined) continue;
      reply.header('ratelimit-policy', policy.header);
      reply.header('ratelimit', `"${policy.name}";r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`);
      if (!decision.allowed) {
        limited.inc({ policy: policy.name });
        const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        reply.header('retry-after', String(seconds));
        throw new BlocksError(
          'RATE_LIMITED',
          RATE_LIMIT_ERRORS.RATE_LIMITED.status,
          `Rate limit '${policy.name}' (${policy.policy.limit} per ${policy.policy.periodMs / 1000} s) is used up; retry in ${seconds} s.`,
          { extensions: { policy: policy.name, retry_after_ms: decision.retryAfterMs } },
        );
      }
    }
  };
  logger.debug({ tiers: [...tiers.keys()], scopes: [...scopes.keys()] }, 'rate limits on');
  return onRequest;
}
