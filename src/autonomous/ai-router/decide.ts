import type { ModelCatalog } from './catalog.ts';
import { invalidRouterConfig, noEligibleModel, unknownTaskType } from './errors.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { QualityByComplexity, RouteDecision, RouteRequest } from './types.ts';

/** Quality difference within which the cheaper model wins, unless configured otherwise. */
export const DEFAULT_QUALITY_MARGIN = 0.02;

export interface RouteDeciderOptions {
  readonly catalog: ModelCatalog;
  readonly tokenizer: Pick<Tokenizer, 'countPromptTokens'>;
  /**
   * Output tokens expected per task type, used for the context-window check and the cost
   * estimate. `default` is required and covers task types not listed; other keys must be task
   * types of the catalog. Values are non-negative integers.
   */
  readonly expectedOutputTokens: Readonly<Record<string, number>>;
  /** 0..1; defaults to {@link DEFAULT_QUALITY_MARGIN}. */
  readonly qualityMargin?: number;
}

export interface RouteDecider {
  /**
   * Picks the model for one request.
   *
   * Candidates are the models serving `task_type` whose `context_window` is at least the prompt
   * tokens of `context` (see `extractPromptText`) plus the task type's expected output tokens.
   *
   * A `preferred_model` that is a candidate is chosen. Otherwise (unknown, not serving the task
   * type, or too small a context window) the rule chooses and `routing_reason` says why the
   * preference was not honoured; that is not an error.
   *
   * The rule: let `best` be the highest catalog quality for (task_type, complexity) among the
   * candidates; of the candidates whose quality is at least `best - qualityMargin`, choose the one
   * with the lowest estimated cost; remaining ties go to higher quality, then to the smaller model
   * id, so the answer is deterministic. The runner-up named in `routing_reason` is what the rule
   * would choose without the selected model.
   *
   * `confidence` is the selected model's catalog quality for (task_type, complexity), read as
   * the estimated probability of success, rounded to 3 decimals (not yet calibrated).
   * `estimated_cost` is (prompt tokens × input price + expected output tokens × output price) / 1e6
   * in USD, rounded to 8 decimals.
   *
   * @throws BlocksError `UNKNOWN_TASK_TYPE` (422) when no model serves `task_type`.
   * @throws BlocksError `NO_ELIGIBLE_MODEL` (422) when no model serving it has a large enough
   *   context window.
   */
  decide(request: RouteRequest): RouteDecision;
}

interface Candidate {
  readonly id: string;
  readonly contextWindow: number;
  readonly inputPrice: number;
  readonly outputPrice: number;
  readonly quality: QualityByComplexity;
}

interface TaskRoute {
  readonly candidates: readonly Candidate[];
  readonly outputTokens: number;
  readonly largestContextWindow: number;
}

interface Scored {
  readonly candidate: Candidate;
  readonly quality: number;
  readonly cost: number;
}

// Catalog figures have a few decimals; this keeps 0.86 - 0.02 >= 0.84 true in floating point.
const EPSILON = 1e-9;

/**
 * Builds a decider over a validated catalog. Everything that does not depend on the request
 * (candidates and expected output per task type) is computed here, once.
 *
 * @throws BlocksError `INVALID_ROUTER_CONFIG` for a bad `expectedOutputTokens` or `qualityMargin`.
 */
export function createRouteDecider(options: RouteDeciderOptions): RouteDecider {
  const { catalog, tokenizer } = options;
  const margin = options.qualityMargin ?? DEFAULT_QUALITY_MARGIN;
  if (!Number.isFinite(margin) || margin < 0 || margin > 1) {
    throw invalidRouterConfig('quality_margin', `must be a number from 0 to 1 (got ${margin})`);
  }
  const outputTokens = validateExpectedOutput(options.expectedOutputTokens, catalog.taskTypes);

  const routes = new Map<string, TaskRoute>();
  for (const taskType of catalog.taskTypes) {
    const candidates = catalog.modelsForTask(taskType).map((spec): Candidate => ({
      id: spec.model,
      contextWindow: spec.context_window,
      inputPrice: spec.input_price_per_mtok,
      outputPrice: spec.output_price_per_mtok,
      // The catalog guarantees a quality entry for every declared task type.
      quality: spec.quality[taskType] as QualityByComplexity,
    }));
    routes.set(taskType, {
      candidates,
      outputTokens: outputTokens[taskType] ?? (outputTokens.default as number), // default: checked above
      largestContextWindow: Math.max(...candidates.map((c) => c.contextWindow)),
    });
  }

  // The rule, over `pool` minus `without` (which is how the runner-up is found).
  const choose = (pool: readonly Scored[], without?: Scored): Scored | undefined => {
    let best = -Infinity;
    for (const o of pool) if (o !== without && o.quality > best) best = o.quality;
    let chosen: Scored | undefined;
    for (const o of pool) {
      if (o === without || best - o.quality > margin + EPSILON) continue;
      if (chosen === undefined || preferable(o, chosen)) chosen = o;
    }
    return chosen;
  };

  return {
    decide(request) {
      const { task_type: taskType, complexity, preferred_model: preferred } = request;
      const route = routes.get(taskType);
      if (route === undefined) throw unknownTaskType(taskType, catalog.taskTypes);

      const promptTokens = tokenizer.countPromptTokens(request.context);
      const needed = promptTokens + route.outputTokens;
      const eligible: Scored[] = [];
      const tooSmall: string[] = [];
      for (const candidate of route.candidates) {
        if (candidate.contextWindow < needed) {
          tooSmall.push(candidate.id);
          continue;
        }
        const cost = (promptTokens * candidate.inputPrice + route.outputTokens * candidate.outputPrice) / 1e6;
        eligible.push({ candidate, quality: candidate.quality[complexity], cost });
      }
      const ruleChoice = choose(eligible);
      if (ruleChoice === undefined) {
        throw noEligibleModel({
          taskType,
          promptTokens,
          expectedOutputTokens: route.outputTokens,
          largestContextWindow: route.largestContextWindow,
        });
      }

      const task = `${taskType}/${complexity}`;
      const tokens = `${promptTokens} prompt + ${route.outputTokens} expected output tokens`;
      const preferredChoice = preferred === undefined ? undefined : eligible.find((o) => o.candidate.id === preferred);
      const selected = preferredChoice ?? ruleChoice;

      const parts: string[] = [];
      if (preferredChoice === undefined) {
        parts.push(`${selected.candidate.id}: ${ruleFactor(selected, eligible, task, margin)}`);
        parts.push(runnerUp(choose(eligible, selected)));
      } else if (preferredChoice === ruleChoice) {
        parts.push(`${selected.candidate.id}: preferred model, also the rule's choice (${figures(selected)} for ${task})`);
        parts.push(runnerUp(choose(eligible, selected)));
      } else {
        parts.push(`${selected.candidate.id}: preferred model honoured (${figures(selected)} for ${task})`);
        parts.push(`the rule would choose ${ruleChoice.candidate.id} (${figures(ruleChoice)})`);
      }
      if (tooSmall.length > 0) parts.push(`context window too small for ${tokens}: ${tooSmall.join(', ')}`);
      if (preferred !== undefined && preferredChoice === undefined) {
        parts.push(`preferred model '${preferred}' not honoured: ${whyNot(preferred, catalog, taskType, tokens)}`);
      }

      return {
        selected_model: selected.candidate.id,
        confidence: round(selected.quality, 1e3),
        routing_reason: parts.join('; '),
        estimated_cost: round(selected.cost, 1e8),
      };
    },
  };
}

function validateExpectedOutput(raw: Readonly<Record<string, number>>, taskTypes: readonly string[]): Readonly<Record<string, number>> {
  if (typeof raw !== 'object' || raw === null) {
    throw invalidRouterConfig('expected_output_tokens', 'must be a mapping from task type to tokens');
  }
  if (!('default' in raw)) throw invalidRouterConfig('expected_output_tokens.default', 'missing');
  for (const [key, value] of Object.entries(raw)) {
    if (key !== 'default' && !taskTypes.includes(key)) {
      throw invalidRouterConfig(`expected_output_tokens.${key}`, `no model serves task type '${key}'`);
    }
    if (!Number.isSafeInteger(value) || value < 0) {
      throw invalidRouterConfig(`expected_output_tokens.${key}`, `must be a non-negative integer (got ${String(value)})`);
    }
  }
  return raw;
}

/** Lower cost first, then higher quality, then the smaller id. */
function preferable(a: Scored, b: Scored): boolean {
  if (a.cost !== b.cost) return a.cost < b.cost;
  if (a.quality !== b.quality) return a.quality > b.quality;
  return a.candidate.id < b.candidate.id;
}

function ruleFactor(selected: Scored, eligible: readonly Scored[], task: string, margin: number): string {
  let best = selected;
  for (const o of eligible) if (o.quality > best.quality || (o.quality === best.quality && o.cost < best.cost)) best = o;
  if (best.quality === selected.quality) {
    return `best quality for ${task} (${formatQuality(selected.quality)}) at ${formatUsd(selected.cost)}`;
  }
  return (
    `cheapest model within ${margin} of the best quality for ${task} ` +
    `(${formatQuality(selected.quality)} vs ${formatQuality(best.quality)} for ${best.candidate.id}) ` +
    `at ${formatUsd(selected.cost)} vs ${formatUsd(best.cost)}`
  );
}

function runnerUp(second: Scored | undefined): string {
  return second === undefined ? 'no other eligible model' : `runner-up ${second.candidate.id} (${figures(second)})`;
}

function whyNot(preferred: string, catalog: ModelCatalog, taskType: string, tokens: string): string {
  const spec = catalog.getModel(preferred);
  if (spec === undefined) return 'unknown model';
  if (!spec.task_types.includes(taskType)) return `it does not serve task type '${taskType}'`;
  return `its context window (${spec.context_window} tokens) is too small for ${tokens}`;
}

const figures = (o: Scored): string => `${formatQuality(o.quality)} at ${formatUsd(o.cost)}`;
const formatQuality = (quality: number): string => String(round(quality, 1e3));
// toFixed keeps tiny costs out of exponent notation; trailing zeros only add noise.
const formatUsd = (usd: number): string =>
  `$${round(usd, 1e8)
    .toFixed(8)
    .replace(/\.?0+$/, '')}`;
const round = (value: number, scale: number): number => Math.round(value * scale) / scale;
