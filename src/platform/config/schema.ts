import { Type, type Static } from 'typebox';

/**
 * A duration in milliseconds. YAML may write `30s`, `300ms`, `5m`; the loader converts every
 * node carrying this description before validation.
 */
export const DURATION_DESCRIPTION = 'duration: milliseconds, or 30s / 300ms / 5m / 1h / 7d';
const Duration = Type.Integer({ minimum: 0, description: DURATION_DESCRIPTION });
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
const Url = Type.String({ minLength: 1 });

const Service = Type.Object(
  {
    /** This service's own listening address, when it must differ from `http.host`. */
    host: Type.Optional(Type.String({ minLength: 1 })),
    port: Port,
    /** Where the gateway reaches this service when it runs in another process. */
    url: Type.Optional(Url),
    /** Several processes running this service: the gateway balances across them (`url` is a pool of one). */
    urls: Type.Optional(Type.Array(Url, { minItems: 1 })),
  },
  { additionalProperties: false },
);

/** How the gateway spreads a service's traffic over its `urls` and routes around failed members (src/gateway/pool.ts). */
const GatewayUpstreams = Type.Object(
  {
    balancing: Type.Enum(['round_robin', 'least_connections']),
    health_check: Type.Object(
      {
        path: Type.String({ pattern: '^/' }),
        /** Time between two checks of every member; 0 turns active checks off. */
        interval: Duration,
        timeout: Duration,
        /** Consecutive passes that bring a member back, and consecutive failures that take it out. */
        healthy_threshold: Type.Integer({ minimum: 1 }),
        unhealthy_threshold: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    /** Consecutive failed answers (no answer, or a 5xx) that eject a member for `ejection`. */
    passive: Type.Object({ failures: Type.Integer({ minimum: 1 }), ejection: Duration }, { additionalProperties: false }),
    /** Send an idempotent request that got no answer to another member. */
    retry_idempotent: Type.Boolean(),
    /** Members one request may be sent to, the first included. */
    max_attempts: Type.Integer({ minimum: 1, maximum: 10 }),
  },
  { additionalProperties: false },
);

/** An external OIDC issuer (src/core/identity/access/authenticator.ts). */
const ExternalIssuer = Type.Object(
  {
    /** Exactly the `iss` its tokens carry; discovery is fetched from `<issuer>/.well-known/openid-configuration`. */
    issuer: Url,
    /** The `aud` its tokens must name. */
    audience: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]),
    /** Skips discovery. */
    jwks_uri: Type.Optional(Url),
    /** Claim naming the tenant (`tenant` by default); a token without it is refused unless `tenant` is set. */
    tenant_claim: Type.Optional(Type.String({ minLength: 1 })),
    /** Every token of this issuer acts for this tenant (an IdP that serves one tenant). */
    tenant: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })),
  },
  { additionalProperties: false },
);

/** A tenant's context rules: where from, when, and from which devices its callers may come. */
const TenantAccess = Type.Object(
  {
    /** CIDRs (or single addresses) the tenant's callers must come from; any address when absent. */
    ip_allow: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** CIDRs refused even when allowed above. */
    ip_deny: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    /** Hours (UTC unless `time_zone`) in which calls are allowed, e.g. `08:00-18:00`; any time when absent. */
    hours: Type.Optional(Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$' })),
    /** Days calls are allowed (`mon`..`sun`); every day when absent. */
    days: Type.Optional(Type.Array(Type.Enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']), { minItems: 1 })),
    /** IANA time zone of `hours` and `days`. */
    time_zone: Type.Optional(Type.String({ minLength: 1 })),
    /** Callers must name a device registered for the tenant (`x-blocks-device`) or present its client certificate. */
    require_device: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Header and JSON field changes of one direction of a gateway transform (src/platform/http/transforms.ts). */
const TransformOps = Type.Object(
  {
    add_headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String())),
    remove_headers: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    rename_headers: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }))),
    /** Dotted paths (`a.b.c`) to values. */
    add_json: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Unknown())),
    remove_json: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    rename_json: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }))),
  },
  { additionalProperties: false },
);
const Transform = Type.Object(
  {
    /** `<METHOD> /path/:param/*` (exact, `*` for the rest) or a bare `/prefix`. */
    route: Type.String({ minLength: 1 }),
    request: Type.Optional(TransformOps),
    response: Type.Optional(TransformOps),
  },
  { additionalProperties: false },
);
const Cors = Type.Object(
  {
    /** Exact origins allowed to call from a browser; empty: no cross-origin access. */
    origins: Type.Array(Type.String({ minLength: 1 })),
    methods: Type.Array(Type.String({ minLength: 1 })),
    headers: Type.Array(Type.String({ minLength: 1 })),
    max_age: Duration,
    credentials: Type.Boolean(),
  },
  { additionalProperties: false },
);

const Resources = Type.Object({ cpu: Type.String(), memory: Type.String() }, { additionalProperties: false });

const RateLimitPolicy = Type.Object(
  {
    /** Requests per `period` at the sustained rate. */
    limit: Type.Integer({ minimum: 1 }),
    period: Type.Integer({ minimum: 1, description: DURATION_DESCRIPTION }),
    /** Requests allowed at once after a quiet spell; `limit` when absent. */
    burst: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
const Optimize = Type.Enum(['cost', 'quality', 'latency', 'balanced']);
const RankWeights = Type.Object(
  { quality: Type.Number({ minimum: 0 }), cost: Type.Number({ minimum: 0 }), latency: Type.Number({ minimum: 0 }) },
  { additionalProperties: false },
);
const AiProvider = Type.Object(
  {
    protocol: Type.Enum(['openai', 'anthropic']),
    /** OpenAI-compatible: up to the version segment (`https://api.openai.com/v1`); Anthropic: without `/v1`. */
    base_url: Url,
    /** Where the key lives: `env:NAME` or `file:/path`, within `secrets` (checked at start). None for local servers that need no key. */
    credentials_ref: Type.Optional(Type.String({ minLength: 1 })),
    /** Data-residency region of this endpoint, e.g. `us`, `eu`. */
    region: Type.Optional(Type.String({ minLength: 1 })),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
const AiTenantPolicy = Type.Object(
  {
    allowed_providers: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    allowed_regions: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    optimize: Type.Optional(Optimize),
  },
  { additionalProperties: false },
);
const AiRoutingPolicy = Type.Object(
  {
    task_type: Type.Optional(Type.String({ minLength: 1 })),
    complexity: Type.Optional(Type.Enum(['low', 'medium', 'high'])),
    optimize: Type.Optional(Optimize),
    /** Only these models may serve the policy; all eligible models when omitted. */
    models: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  },
  { additionalProperties: false },
);

/** The whole configuration. YAML files and variables are merged, then checked against this. */
export const ConfigSchema = Type.Object(
  {
    env: Type.String({ minLength: 1 }),
    data_dir: Type.String({ minLength: 1 }),
    log: Type.Object({ level: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }, { additionalProperties: false }),
    services: Type.Object({ gateway: Service, autonomous: Service, collaborative: Service }, { additionalProperties: false }),
    gateway: Type.Object(
      {
        upstreams: GatewayUpstreams,
        /** Per-route request/response changes, as Kong's request- and response-transformer plugins. */
        transforms: Type.Array(Transform),
      },
      { additionalProperties: false },
    ),
    /** Serve HTTPS on every port; TLS 1.3 only unless `allow_tls12`. Relative paths from the working directory. */
    tls: Type.Optional(
      Type.Object(
        { cert: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }), allow_tls12: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    ),
    /**
     * What a secret reference (`env:NAME`, `file:/path`: a catalog `credentials_ref`, `ai.providers.*.credentials_ref`)
     * may name (src/platform/secrets/). Blocks' data directory, key files and own variables are never readable.
     */
    secrets: Type.Object(
      {
        /** Variables: exact names, `PREFIX_*` or `*_SUFFIX`. */
        env: Type.Array(Type.String({ pattern: '^(?:[A-Za-z_][A-Za-z0-9_]*\\*?|\\*[A-Za-z0-9_]+)$' })),
        /** Absolute directories whose files may be named; `..` and symlinks are resolved before the check. */
        directories: Type.Array(Type.String({ pattern: '^/' })),
      },
      { additionalProperties: false },
    ),
    http: Type.Object(
      {
        /**
         * The address every service listens on (`services.<name>.host` overrides it for one):
         * `127.0.0.1` in development, so a laptop's start is not reachable from its network;
         * `0.0.0.0` (every interface) in the production profile, where a load balancer or a
         * container network must reach it.
         */
        host: Type.String({ minLength: 1 }),
        body_limit_bytes: Type.Integer({ minimum: 1024 }),
        shutdown_timeout: Duration,
        keep_alive_timeout: Duration,
        /** One log line per answered request. */
        log_requests: Type.Boolean(),
        /** Deepest nesting of arrays and objects a JSON body may have. */
        json_max_depth: Type.Integer({ minimum: 1 }),
        cors: Cors,
        /**
         * Addresses or CIDRs of proxies (the gateway, a load balancer) whose `X-Forwarded-For` is
         * believed: the client's address behind them is what IP rules, throttling and rate limits see.
         */
        trusted_proxies: Type.Array(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false },
    ),
    database: Type.Object({ url: Type.Optional(Url), pool_max: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
    bus: Type.Object(
      {
        kind: Type.Enum(['auto', 'memory', 'nats', 'redis']),
        nats_url: Type.Optional(Url),
        redis_url: Type.Optional(Url),
        /** Stream (NATS) or stream key (Redis) every subject lives in. */
        stream: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }),
        subject_prefix: Type.String({ pattern: '^[A-Za-z0-9_-]+$' }),
        /** Attempts of a delivery whose handler keeps failing; failures of an unreachable database do not count (retried for `retention.events`). */
        max_deliver: Type.Integer({ minimum: 1 }),
        ack_wait: Duration,
        /** Longest wait between two retries of a failed delivery. */
        max_retry_delay: Duration,
      },
      { additionalProperties: false },
    ),
    cache: Type.Object(
      {
        redis_url: Type.Optional(Url),
        key_prefix: Type.String({ minLength: 1 }),
        l1_max_entries: Type.Integer({ minimum: 1 }),
        l1_ttl: Duration,
        default_ttl: Duration,
      },
      { additionalProperties: false },
    ),
    outbox: Type.Object(
      {
        poll_interval: Duration,
        batch_size: Type.Integer({ minimum: 1 }),
        /** Refusals by a bus that answers before an event moves to outbox_dead_letters; outages never count. */
        max_attempts: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    retention: Type.Object(
      {
        /** Published events are deleted after this; 0 keeps them forever. */
        events: Duration,
        /** Inbox rows (what each consumer processed) are deleted after this; 0 keeps them forever. */
        inbox: Duration,
        /** How often expired rows are looked for; 0 turns pruning off. */
        interval: Duration,
      },
      { additionalProperties: false },
    ),
    idempotency: Type.Object(
      {
        /** How long an `Idempotency-Key` is remembered after its request began: a retry within it gets the stored answer. */
        window: Duration,
      },
      { additionalProperties: false },
    ),
    resilience: Type.Object(
      { failure_threshold: Type.Integer({ minimum: 1 }), recovery_timeout: Duration },
      { additionalProperties: false },
    ),
    autonomous_blocks: Type.Object(
      {
        replicas: Type.Integer({ minimum: 1 }),
        resources: Resources,
        config: Type.Object(
          { ai_router_timeout: Duration, error_retry_attempts: Type.Integer({ minimum: 0 }) },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    collaborative_blocks: Type.Object(
      {
        replicas: Type.Integer({ minimum: 1 }),
        resources: Resources,
        config: Type.Object({ workflow_timeout: Duration, sync_batch_size: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
      },
      { additionalProperties: false },
    ),
    rate_limits: Type.Object(
      {
        enabled: Type.Boolean(),
        /** What a request gets when the shared limiter (Redis) does not answer within `store_timeout`. */
        on_store_failure: Type.Enum(['open', 'closed']),
        store_timeout: Duration,
        /** Allowance per caller (API key, else tenant) for each tier; `default` applies to tenants not in `tenant_tiers`. */
        tiers: Type.Record(Type.String({ minLength: 1 }), RateLimitPolicy),
        tenant_tiers: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 })),
        /** Stricter allowances for the routes needing a scope, per caller, on top of the tier's. */
        scopes: Type.Record(Type.String({ minLength: 1 }), RateLimitPolicy),
      },
      { additionalProperties: false },
    ),
    auth: Type.Object(
      {
        /** `iss` of the tokens Blocks issues; the gateway's own URL when absent. */
        issuer: Type.Optional(Url),
        /** `aud` of tokens from `/oauth/token`. */
        audience: Type.String({ minLength: 1 }),
        access_token_ttl: Duration,
        /** Lifetime of refresh tokens; each use returns a new one and retires the old (rotation). */
        refresh_token_ttl: Duration,
        /** Allow the resource-owner password grant (off by default: OAuth 2.1 drops it). */
        password_grant: Type.Boolean(),
        /** 32 bytes, base64 (`openssl rand -base64 32`): encrypts signing keys at rest. Required in production. */
        key_encryption_key: Type.Optional(Type.String({ minLength: 1 })),
        /** Leeway on `exp` and `nbf` of every token verified. */
        clock_skew: Duration,
        /** Other OIDC issuers whose tokens are trusted, each through its discovery document and JWKS. */
        external_issuers: Type.Array(ExternalIssuer),
        /** Routes anyone may call besides health: `/metrics` and the OpenAPI document at `/docs`. */
        anonymous: Type.Object({ metrics: Type.Boolean(), docs: Type.Boolean() }, { additionalProperties: false }),
        /** Failed authentications one source address may make per `period` (with that burst) before it is throttled. */
        failed_attempts: Type.Object(
          { limit: Type.Integer({ minimum: 1 }), period: Duration, burst: Type.Optional(Type.Integer({ minimum: 1 })) },
          { additionalProperties: false },
        ),
        /** Per-tenant context rules of the zero-trust decision (src/core/identity/access/context-policy.ts). */
        tenants: Type.Record(Type.String({ minLength: 1 }), TenantAccess),
      },
      { additionalProperties: false },
    ),
    ai: Type.Object(
      {
        /** The model catalog YAML; a relative path is resolved against the config directory. */
        catalog_file: Type.String({ minLength: 1 }),
        /** Expected completion length per task type, used for `estimated_cost`; `default` for the rest. */
        expected_output_tokens: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
        /** Where each catalog provider is called; a model's deployments name one of these. */
        providers: Type.Record(Type.String({ minLength: 1 }), AiProvider),
        routing: Type.Object(
          {
            /** What a request optimises for when neither it nor its tenant says. */
            optimize: Optimize,
            /** Relative weight of quality, cost and latency per `optimize` mode (see decide.ts). */
            weights: Type.Object(
              { cost: RankWeights, quality: RankWeights, latency: RankWeights, balanced: RankWeights },
              { additionalProperties: false },
            ),
            /** Share of decisions (0..1) given to a runner-up so estimates of other models stay current. */
            exploration: Type.Number({ minimum: 0, maximum: 1 }),
          },
          { additionalProperties: false },
        ),
        learning: Type.Object(
          {
            /** Weight, in observations, of the catalog's quality figure against recorded outcomes. */
            prior_strength: Type.Number({ exclusiveMinimum: 0 }),
            /** Age at which an outcome counts half; older evidence fades so the router follows change. */
            half_life: Duration,
            /** How long `ai_outcomes` rows (feedback and proxied calls) are kept for calibration; 0 keeps them forever. */
            outcome_retention: Duration,
          },
          { additionalProperties: false },
        ),
        /** Per-tenant routing policy: data residency, allowed providers, default optimisation. */
        tenants: Type.Record(Type.String({ minLength: 1 }), AiTenantPolicy),
        /** Named routing policies a client can pass as `model` to /v1/chat/completions. */
        policies: Type.Record(Type.String({ minLength: 1 }), AiRoutingPolicy),
        proxy: Type.Object(
          {
            /** Longest wait for one provider attempt (the whole answer, or between two stream reads). */
            attempt_timeout: Duration,
            /** Longest time one /v1/chat/completions request may take across all its attempts. */
            request_timeout: Duration,
            /** Attempts per request, the first included (the retry budget). */
            max_attempts: Type.Integer({ minimum: 1, maximum: 10 }),
            /**
             * How long a call the provider answered waits for the database to take its record when it
             * went away meanwhile (retried with backoff); past it the caller gets 503 DATABASE_UNAVAILABLE.
             */
            record_wait: Duration,
            /** Task type and complexity of a /v1 call that names neither (extension field `blocks`). */
            default_task_type: Type.String({ minLength: 1 }),
            default_complexity: Type.Enum(['low', 'medium', 'high']),
            response_cache: Type.Object(
              {
                /** TTL used when a request opts in without one; requests may ask for less, never more than max_ttl. */
                default_ttl: Duration,
                max_ttl: Duration,
              },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
        budgets: Type.Object(
          {
            /** A hold for an in-flight call is released after this long if its process died before settling it. */
            hold_ttl: Duration,
          },
          { additionalProperties: false },
        ),
        /**
         * Where URLs that callers set (a catalog deployment's `base_url`) may point (src/platform/net/egress.ts):
         * public addresses only, checked when written and at connect time. `ai.providers` are the operator's and not checked.
         */
        egress: Type.Object(
          {
            /** Lift the address checks altogether (one machine in development); http(s) only and no credentials still hold. */
            allow_private: Type.Boolean(),
            /** Host names (`llm.corp.example`, `*.corp.example`), addresses or CIDRs reachable although not public. */
            allow: Type.Array(Type.String({ minLength: 1 })),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The validated configuration; every duration is in milliseconds. */
export type Config = Readonly<Static<typeof ConfigSchema>>;
