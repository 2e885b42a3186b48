import { Type, type Static, type TSchema } from 'typebox';
import { EgressSection } from '../net/egress-policies.ts';
import { NotifySection } from '../notify/config.ts';

/**
 * A duration in milliseconds. YAML may write `30s`, `300ms`, `5m`; the loader converts every
 * node carrying this description before validation.
 */
export const DURATION_DESCRIPTION = 'duration: milliseconds, or 30s / 300ms / 5m / 1h / 7d';
export const Duration = Type.Integer({ minimum: 0, description: DURATION_DESCRIPTION });
/** A file path; a relative one is resolved against the configuration directory when loaded. */
export const PATH_DESCRIPTION = 'path: absolute, or relative to the configuration directory';
export const FilePath = Type.String({ minLength: 1, description: PATH_DESCRIPTION });
const Port = Type.Integer({ minimum: 0, maximum: 65535 });
export const Url = Type.String({ minLength: 1 });

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
/**
 * The kernel's sections of the configuration. Each module adds its own (its manifest's `config`):
 * `composeConfigSchema` joins them, and YAML files and variables are merged, then checked against the whole.
 */
export const ConfigSchema = Type.Object(
  {
    env: Type.String({ minLength: 1 }),
    data_dir: Type.String({ minLength: 1 }),
    log: Type.Object({ level: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }, { additionalProperties: false }),
    services: Type.Object({ gateway: Service, autonomous: Service, collaborative: Service }, { additionalProperties: false }),
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
        /** WebSocket connections (src/platform/http/websocket.ts). */
        websocket: Type.Object(
          {
            /** Largest message a client (or a service behind the gateway) may send; a larger one closes the connection with 1009. */
            max_payload_bytes: Type.Integer({ minimum: 125 }),
            /** Data queued for a slow reader past which its connection is closed with `buffer_exceeded_code`. */
            max_buffered_bytes: Type.Integer({ minimum: 1024 }),
            /** 1013 (try again later) or 1008 (policy violation). */
            buffer_exceeded_code: Type.Union([Type.Literal(1008), Type.Literal(1013)]),
            /** A ping this often; a connection that has not answered the previous one is cut. 0: no pings. */
            ping_interval: Duration,
            /** How long a closing handshake may take (on shutdown, or after a limit was exceeded) before the connection is cut. */
            close_timeout: Duration,
            /** How long the gateway waits for a service to accept an upgrade it forwards, before trying another member. */
            handshake_timeout: Duration,
            /** How long a ticket (`?ticket=`) may wait to be used; it is used once. */
            ticket_ttl: Duration,
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
    /**
     * Where URLs that callers set (webhooks, MCP servers, AI deployments' base URLs) may point
     * (src/platform/net/egress.ts): public addresses only unless this allows more. A module's section
     * may carry an `egress` of its own, which replaces this one for that module.
     */
    egress: EgressSection,
    /** How notifications leave the process (src/platform/notify): `none` refuses every send, `memory` keeps them, `smtp` relays them. */
    notify: NotifySection,
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
        /** Messages older than this leave the stream, acked or not (NATS `max_age`; Redis trims them); 0 keeps them. */
        max_age: Duration,
        /** Size limit of the NATS stream in bytes, oldest messages dropped past it; 0: none. Redis Streams cannot trim by size. */
        max_bytes: Type.Integer({ minimum: 0 }),
        /** How long a message id is remembered, so a message published again (a relay retry) is stored once. At most `max_age`. */
        duplicate_window: Duration,
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
  },
  { additionalProperties: false },
);

/** The validated kernel configuration; every duration is in milliseconds. A module reads its own section from its context. */
export type Config = Readonly<Static<typeof ConfigSchema>>;

/** The top-level keys the kernel owns: no module section may take one. */
export const KERNEL_CONFIG_KEYS: readonly string[] = Object.keys(ConfigSchema.properties);

/** The kernel's schema with each module's section added under its key. */
export function composeConfigSchema(sections: ReadonlyArray<{ readonly key: string; readonly schema: TSchema }>): TSchema {
  const properties: Record<string, TSchema> = { ...ConfigSchema.properties };
  for (const section of sections) properties[section.key] = section.schema;
  return Type.Object(properties, { additionalProperties: false });
}
