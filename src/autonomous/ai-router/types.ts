/** How hard a request is, as the caller judges it; the catalog rates each model per level. */
export type Complexity = 'low' | 'medium' | 'high';

/** Expected success/quality (0..1) of a model on one task type, per complexity. */
export interface QualityByComplexity {
  readonly low: number;
  readonly medium: number;
  readonly high: number;
}

/** What a model can do beyond plain text chat; a request may require some (`context.capabilities`). */
export type Capability = 'tools' | 'vision' | 'json_mode' | 'streaming';
export const CAPABILITIES: readonly Capability[] = ['tools', 'vision', 'json_mode', 'streaming'];

/**
 * One place a model can be called: a provider endpoint with its own key. A model with several
 * deployments (regions, keys, Azure-style deployments) is load-balanced across them by weight.
 * Unset fields come from the provider's entry in config `ai.providers`.
 */
export interface Deployment {
  /** Unique within the model, e.g. `default`, `eu-1`. */
  readonly id: string;
  /** A provider named in `ai.providers`; the model's provider when the catalog entry omits it. */
  readonly provider: string;
  readonly base_url?: string;
  /** Where the key lives (`env:NAME` or `file:/path`); never returned by the API. */
  readonly credentials_ref?: string;
  /** The name the provider expects, e.g. an Azure deployment name; the model id when omitted. */
  readonly upstream_model?: string;
  /** Relative share of traffic, > 0. */
  readonly weight: number;
  /** Data-residency region, e.g. `us`, `eu`; the provider's region when omitted. */
  readonly region?: string;
}

/**
 * One model the router may pick, as declared in the model catalog (config/models.yaml).
 * Prices are USD per million tokens; `context_window` is in tokens and bounds prompt plus output.
 * `quality` has exactly one entry per declared task type.
 */
export interface ModelSpec {
  readonly provider: string;
  /** The model id, unique across the catalog; it is what `selected_model` reports. */
  readonly model: string;
  readonly task_types: readonly string[];
  readonly context_window: number;
  readonly input_price_per_mtok: number;
  readonly output_price_per_mtok: number;
  readonly quality: Readonly<Record<string, QualityByComplexity>>;
  /** Capabilities beyond plain chat; the catalog defaults to `tools`, `json_mode` and `streaming`. */
  readonly capabilities: readonly Capability[];
  /** Typical latency of one call in milliseconds, the prior for learned latency; null when unknown. */
  readonly typical_latency_ms: number | null;
  /** At least one; the catalog turns an omitted list into one `default` deployment on `provider`. */
  readonly deployments: readonly Deployment[];
}

/** Body of `POST /api/v1/autonomous/ai/route`. */
export interface RouteRequest {
  readonly task_type: string;
  readonly complexity: Complexity;
  /** A model id the caller would like; honoured only when that model is eligible. */
  readonly preferred_model?: string;
  /** Free-form request context; its prompt-bearing text is what gets counted (see tokenizer.ts). */
  readonly context?: Readonly<Record<string, unknown>>;
}

/** Answer of `POST /api/v1/autonomous/ai/route`. */
export interface RouteDecision {
  readonly selected_model: string;
  /** Estimated probability of success, from the catalog's quality figure (3 decimals). */
  readonly confidence: number;
  /** One readable sentence: the deciding factor, the runner-up, and any preference not honoured. */
  readonly routing_reason: string;
  /** USD for the counted prompt plus the task type's expected output (8 decimals). */
  readonly estimated_cost: number;
}
