import { Type, type Static } from 'typebox';
import { Duration, FilePath, Url } from '../../platform/config/schema.ts';
import type { ConfigSection } from '../../platform/modules/manifest.ts';
import { EgressOverride } from '../../platform/net/egress-policies.ts';

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

/** The AI router's section of the configuration (`ai:`). */
export const AiConfigSchema = Type.Object(
  {
    /** The model catalog YAML; a relative path is resolved against the config directory. */
    catalog_file: FilePath,
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
     * The AI router's own egress policy (src/platform/net/egress-policies.ts) for URLs that callers set
     * (a catalog deployment's `base_url`): when present it replaces the platform's `egress` for this
     * module, a key left out being the strict default; when absent the platform's applies.
     * `ai.providers` are the operator's and not checked.
     */
    egress: Type.Optional(EgressOverride),
  },
  { additionalProperties: false },
);

export type AiConfig = Readonly<Static<typeof AiConfigSchema>>;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** What `ai:` holds unless configuration says otherwise (durations in milliseconds). */
export const AI_CONFIG_DEFAULTS: AiConfig = {
  catalog_file: 'models.yaml',
  expected_output_tokens: { default: 500, chat: 400, code: 800, summarization: 300, classification: 20, extraction: 200, reasoning: 1200 },
  providers: {
    openai: { protocol: 'openai', base_url: 'https://api.openai.com/v1', credentials_ref: 'env:OPENAI_API_KEY', region: 'us' },
    anthropic: { protocol: 'anthropic', base_url: 'https://api.anthropic.com', credentials_ref: 'env:ANTHROPIC_API_KEY', region: 'us' },
    google: {
      protocol: 'openai',
      base_url: 'https://generativelanguage.googleapis.com/v1beta/openai',
      credentials_ref: 'env:GEMINI_API_KEY',
      region: 'us',
    },
  },
  routing: {
    optimize: 'balanced',
    weights: {
      cost: { quality: 1, cost: 1, latency: 0.05 },
      quality: { quality: 1, cost: 0, latency: 0 },
      latency: { quality: 1, cost: 0.05, latency: 1 },
      balanced: { quality: 1, cost: 0.1, latency: 0.05 },
    },
    exploration: 0.02,
  },
  // Feedback and proxied-call outcomes are kept 90 days for /ai/stats calibration.
  learning: { prior_strength: 20, half_life: 10 * MINUTE, outcome_retention: 90 * DAY },
  tenants: {},
  policies: {},
  proxy: {
    attempt_timeout: 60 * SECOND,
    request_timeout: 120 * SECOND,
    max_attempts: 3,
    // A call the provider answered waits this long for a database that went away meanwhile, then 503.
    record_wait: 10 * SECOND,
    default_task_type: 'chat',
    default_complexity: 'medium',
    response_cache: { default_ttl: 5 * MINUTE, max_ttl: 24 * HOUR },
  },
  budgets: { hold_ttl: 10 * MINUTE },
  // No `egress` of its own: deployment base_urls set through /ai/models follow the platform's `egress`.
};

export const AI_CONFIG_SECTION: ConfigSection<typeof AiConfigSchema> = { key: 'ai', schema: AiConfigSchema, defaults: AI_CONFIG_DEFAULTS };
