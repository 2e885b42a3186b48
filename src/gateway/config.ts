import { Type, type Static } from 'typebox';
import { Duration } from '../platform/config/schema.ts';
import type { ConfigSection } from '../platform/modules/manifest.ts';

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

/** The gateway's section of the configuration (`gateway:`). */
export const GatewayConfigSchema = Type.Object(
  {
    upstreams: GatewayUpstreams,
    /** Per-route request/response changes, as Kong's request- and response-transformer plugins. */
    transforms: Type.Array(Transform),
  },
  { additionalProperties: false },
);

export type GatewayConfig = Readonly<Static<typeof GatewayConfigSchema>>;

/** What `gateway:` holds unless configuration says otherwise (durations in milliseconds). */
export const GATEWAY_CONFIG_DEFAULTS: GatewayConfig = {
  upstreams: {
    // A service's `url`, or each of its `urls`, is a pool member (see README, "Upstream pools").
    balancing: 'round_robin',
    health_check: { path: '/health/ready', interval: 5_000, timeout: 1_000, healthy_threshold: 2, unhealthy_threshold: 2 },
    passive: { failures: 3, ejection: 30_000 },
    retry_idempotent: true,
    max_attempts: 3,
  },
  // [{ route: "POST /api/v1/x/*" or "/prefix", request: {...}, response: {...} }]; see README, "Gateway security".
  transforms: [],
};

export const GATEWAY_CONFIG_SECTION: ConfigSection<typeof GatewayConfigSchema> = {
  key: 'gateway',
  schema: GatewayConfigSchema,
  defaults: GATEWAY_CONFIG_DEFAULTS,
};
