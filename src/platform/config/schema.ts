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
    host: Type.String({ minLength: 1 }),
    port: Port,
    /** Where the gateway reaches this service when it runs in another process. */
    url: Type.Optional(Url),
  },
  { additionalProperties: false },
);

const Resources = Type.Object({ cpu: Type.String(), memory: Type.String() }, { additionalProperties: false });

/** The whole configuration. YAML files and variables are merged, then checked against this. */
export const ConfigSchema = Type.Object(
  {
    env: Type.String({ minLength: 1 }),
    data_dir: Type.String({ minLength: 1 }),
    log: Type.Object({ level: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) }, { additionalProperties: false }),
    services: Type.Object({ gateway: Service, autonomous: Service, collaborative: Service }, { additionalProperties: false }),
    http: Type.Object(
      {
        body_limit_bytes: Type.Integer({ minimum: 1024 }),
        shutdown_timeout: Duration,
        keep_alive_timeout: Duration,
        /** One log line per answered request. */
        log_requests: Type.Boolean(),
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
        max_deliver: Type.Integer({ minimum: 1 }),
        ack_wait: Duration,
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
    outbox: Type.Object({ poll_interval: Duration, batch_size: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
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
    ai: Type.Object(
      {
        /** The model catalog YAML; a relative path is resolved against the config directory. */
        catalog_file: Type.String({ minLength: 1 }),
        /** Expected completion length per task type, used for `estimated_cost`; `default` for the rest. */
        expected_output_tokens: Type.Record(Type.String(), Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** The validated configuration; every duration is in milliseconds. */
export type Config = Readonly<Static<typeof ConfigSchema>>;
