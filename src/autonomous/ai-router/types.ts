/** How hard a request is, as the caller judges it; the catalog rates each model per level. */
export type Complexity = 'low' | 'medium' | 'high';

/** Expected success/quality (0..1) of a model on one task type, per complexity. */
export interface QualityByComplexity {
  readonly low: number;
  readonly medium: number;
  readonly high: number;
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
