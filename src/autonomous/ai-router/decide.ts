import type { ModelCatalog } from './catalog.ts';
import { capabilityMask, CONSTRAINTS, readLimits, type Constraint, type RouteLimits } from './constraints.ts';
import { invalidRouterConfig, noEligibleModel, unknownTaskType } from './errors.ts';
import type { ModelEstimate, ModelEstimates, TenantEstimates } from './learning/estimates.ts';
import type { ModelHealth } from './proxy/model-health.ts';
import { describeChoice, describeExclusions, describeRefusal, type Figures } from './routing-reason.ts';
import { OPTIMIZE_MODES, tenantVerdict, type Optimize, type ProviderPlacement, type TenantPolicy } from './tenant-policy.ts';
import type { Tokenizer } from './tokenizer.ts';
import type { Complexity, ModelSpec, RouteDecision, RouteRequest } from './types.ts';

export type { Optimize, TenantPolicy } from './tenant-policy.ts';
export { CONSTRAINTS, type Constraint } from './constraints.ts';

/** Relative weight of learned quality, cost and latency in the ranking score of one optimisation mode. */
export interface RankWeights {
  readonly quality: number;
  readonly cost: number;
  readonly latency: number;
}

/** `ai.routing` of the configuration. */
export interface RoutingSettings {
  readonly optimize: Optimize;
  readonly weights: Readonly<Record<Optimize, RankWeights>>;
  /** Probability (0..1) that a decision serves the runner-up instead of the top-ranked model. */
  readonly exploration: number;
}

/**
 * The ranking used when the decider is built without settings (tools such as `eval:router`).
 * Same weights as config/default.yaml, no exploration, so the answer is deterministic.
 */
export const DEFAULT_ROUTING: RoutingSettings = Object.freeze({
  optimize: 'balanced',
  weights: Object.freeze({
    cost: Object.freeze({ quality: 1, cost: 1, latency: 0.05 }),
    quality: Object.freeze({ quality: 1, cost: 0, latency: 0 }),
    latency: Object.freeze({ quality: 1, cost: 0.05, latency: 1 }),
    balanced: Object.freeze({ quality: 1, cost: 0.1, latency: 0.05 }),
  }),
  exploration: 0,
});

const PRIOR_ONLY: TenantEstimates = Object.freeze({
  estimate: (_model: string, _taskType: string, _complexity: Complexity, prior: { quality: number; latencyMs: number | null }) => ({
    quality: prior.quality,
    observations: 0,
    latencyMs: prior.latencyMs,
  }),
});

/** Estimates that know nothing beyond the catalog: the prior, unchanged, for every tenant. */
export const PRIOR_ESTIMATES: ModelEstimates = Object.freeze({ forTenant: () => PRIOR_ONLY });

/** Every model is available: for tools that run without breakers. */
export const ALWAYS_AVAILABLE: ModelHealth = Object.freeze({ available: () => true });

/** Costs below this count as this much, so that free models keep a finite cost ratio. */
export const COST_FLOOR_USD = 1e-9;
/** Latencies below this count as this much, for the same reason. */
export const LATENCY_FLOOR_MS = 1;

export interface RouteDeciderOptions {
  readonly catalog: ModelCatalog;
  readonly tokenizer: Pick<Tokenizer, 'countPromptTokens'>;
  /**
   * Output tokens expected per task type, used for the context-window check and the cost
   * estimate. `default` is required and covers task types not listed; other keys must be task
   * types of the catalog. Values are non-negative integers.
   */
  readonly expectedOutputTokens: Readonly<Record<string, number>>;
  /** `ai.routing`; {@link DEFAULT_ROUTING} when omitted. */
  readonly routing?: RoutingSettings;
  /** `ai.tenants`: per-tenant providers, regions and optimisation. No policy for an unlisted tenant. */
  readonly tenants?: Readonly<Record<string, TenantPolicy>>;
  /** `ai.providers`: where a deployment without its own region runs. */
  readonly providers?: Readonly<Record<string, ProviderPlacement>>;
  /** Learned quality and latency, per tenant; {@link PRIOR_ESTIMATES} (the catalog figures) when omitted. */
  readonly estimates?: ModelEstimates;
  /** Breaker state; {@link ALWAYS_AVAILABLE} when omitted. */
  readonly health?: ModelHealth;
  /** Uniform [0, 1) source for exploration; Math.random when omitted. */
  readonly random?: () => number;
}

export interface DecideOptions {
  /** Whose request this is: selects `ai.tenants.<tenant>`. `default` when omitted. */
  readonly tenant?: string;
  /** A routing policy's models: no other model may serve the request. */
  readonly onlyModels?: readonly string[];
  /** A routing policy's optimisation: wins over the tenant's and the default, not over the request's. */
  readonly optimize?: Optimize;
  /** Overrides the decider's random source for this decision. */
  readonly random?: () => number;
}

/** A decision plus what the proxy needs to carry it out. */
export interface RankedDecision extends RouteDecision {
  /** Every model passing the hard constraints: the selected one first, then the order to fall back in. */
  readonly ranked: readonly ModelSpec[];
  readonly prompt_tokens: number;
  readonly expected_output_tokens: number;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly optimize: Optimize;
  readonly tenant: string;
  /** The model the decision names as runner-up; null when only one model was eligible. */
  readonly runner_up: string | null;
}

export interface RouteDecider {
  /**
   * Picks the model for one request; synchronous, no I/O.
   *
   * **Hard constraints.** Candidates are the models serving `task_type`. A candidate is removed
   * when (checked in this order, see {@link CONSTRAINTS}): it is not in `onlyModels`; the tenant's
   * policy allows none of its deployments by provider, or none of those by region (a deployment's
   * region is its own, else its provider's; unknown never matches); it lacks a capability listed
   * in `context.capabilities`; its breaker is open (`ModelHealth.available`); its context window
   * is below the counted prompt tokens plus the task type's expected output tokens; its estimated
   * cost exceeds `context.max_cost` (USD); or its learned latency exceeds `context.max_latency_ms`
   * — a model with no known latency (nothing learned, no `typical_latency_ms`) is removed too,
   * because a ceiling the caller asked for cannot be promised by a model never measured.
   *
   * **Ranking.** Let E be the remaining candidates, q the learned quality (posterior P(success)
   * for task type × complexity from the tenant's own `ModelEstimates`, the catalog figure as prior), c the
   * estimated cost in USD (at least {@link COST_FLOOR_USD}) and l the learned latency in ms (at
   * least {@link LATENCY_FLOOR_MS}; unknown counts as the slowest known latency in E, and the
   * latency term is 0 when none is known). With the weights `w` of the optimisation mode
   * (`context.optimize`, else the routing policy's, else the tenant's, else `ai.routing.optimize`):
   *
   *     score = w.quality · q − w.cost · log10(c / min_E c) − w.latency · log10(l / min_E l)
   *
   * so `w.cost = 0.1` means a tenfold cost must buy 0.1 more probability of success. Only ratios
   * enter: scaling every price (or latency) by one factor changes no choice. Highest score first;
   * ties go to higher quality, then lower cost, then the smaller model id.
   *
   * **Selection.** A `preferred_model` that passes the constraints is selected (the others follow
   * in ranked order). Otherwise the top-ranked model is, except that with probability
   * `ai.routing.exploration` (drawn from `random`, only with two or more candidates) the
   * runner-up is selected and ranked first, so the estimates of the others stay current.
   *
   * `confidence` is the selected model's learned quality rounded to 3 decimals; `estimated_cost`
   * is (prompt tokens × input price + expected output tokens × output price) / 1e6 USD, rounded
   * to 8 decimals; `routing_reason` names the deciding factors against the runner-up, any
   * exploration, a preference not honoured and why, and the models each constraint removed.
   *
   * @throws BlocksError `UNKNOWN_TASK_TYPE` (422) when no model serves `task_type`.
   * @throws BlocksError `INVALID_ROUTE_CONTEXT` (400) when a constraint field of `context` has the wrong type.
   * @throws BlocksError `NO_ELIGIBLE_MODEL` (422) when every candidate fails a constraint; its
   *   `excluded` extension maps each constraint to the models it removed.
   */
  decide(request: RouteRequest, options?: DecideOptions): RankedDecision;
}

interface Prior {
  readonly quality: number;
  readonly latencyMs: number | null;
}

interface Candidate {
  readonly spec: ModelSpec;
  readonly id: string;
  readonly contextWindow: number;
  readonly inputPrice: number;
  readonly outputPrice: number;
  readonly capabilities: number;
  readonly priors: Readonly<Record<Complexity, Prior>>;
}

/**
 * Everything about one task type that does not depend on the request, plus scratch space the
 * (synchronous, hence never interleaved) decisions reuse instead of allocating per candidate.
 */
interface TaskRoute {
  readonly candidates: readonly Candidate[];
  readonly outputTokens: number;
  readonly largestContextWindow: number;
  /** Per configured tenant: the verdict per candidate, as a constraint index + 1 (0 = allowed). */
  readonly tenantVerdicts: ReadonlyMap<string, Uint8Array>;
  readonly verdict: Uint8Array;
  readonly quality: Float64Array;
  readonly cost: Float64Array;
  /** NaN when unknown. */
  readonly latency: Float64Array;
  readonly score: Float64Array;
}

const NO_TENANT_VERDICTS = new Uint8Array(0);
const ELIGIBLE = 0;
const code = (constraint: Constraint): number => CONSTRAINTS.indexOf(constraint) + 1;
const POLICY = code('routing_policy');
const CAPABILITY = code('capabilities');
const CIRCUIT = code('circuit_open');
const WINDOW = code('context_window');
const COST = code('max_cost');
const LATENCY = code('max_latency_ms');

/**
 * Builds a decider over a validated catalog. Everything that does not depend on the request
 * (candidates, priors, tenant verdicts and expected output per task type) is computed here, once.
 *
 * @throws BlocksError `INVALID_ROUTER_CONFIG` for bad `expectedOutputTokens` or `routing` settings.
 */
export function createRouteDecider(options: RouteDeciderOptions): RouteDecider {
  const { catalog, tokenizer } = options;
  const routing = validateRouting(options.routing ?? DEFAULT_ROUTING);
  const tenants = options.tenants ?? {};
  const providers = options.providers ?? {};
  const estimates = options.estimates ?? PRIOR_ESTIMATES;
  const health = options.health ?? ALWAYS_AVAILABLE;
  const defaultRandom = options.random ?? Math.random;
  const outputTokens = validateExpectedOutput(options.expectedOutputTokens, catalog.taskTypes);

  const routes = new Map<string, TaskRoute>();
  for (const taskType of catalog.taskTypes) {
    const candidates = catalog.modelsForTask(taskType).map((spec): Candidate => {
      // The catalog guarantees a quality entry for every declared task type.
      const quality = spec.quality[taskType] as Readonly<Record<Complexity, number>>;
      const prior = (complexity: Complexity): Prior => Object.freeze({ quality: quality[complexity], latencyMs: spec.typical_latency_ms });
      return {
        spec,
        id: spec.model,
        contextWindow: spec.context_window,
        inputPrice: spec.input_price_per_mtok,
        outputPrice: spec.output_price_per_mtok,
        capabilities: capabilityMask(spec.capabilities),
        priors: { low: prior('low'), medium: prior('medium'), high: prior('high') },
      };
    });
    const tenantVerdicts = new Map<string, Uint8Array>();
    for (const [tenant, policy] of Object.entries(tenants)) {
      tenantVerdicts.set(
        tenant,
        Uint8Array.from(candidates, (c) => {
          const verdict = tenantVerdict(c.spec, policy, providers);
          return verdict === null ? ELIGIBLE : code(verdict);
        }),
      );
    }
    const n = candidates.length;
    routes.set(taskType, {
      candidates,
      outputTokens: outputTokens[taskType] ?? (outputTokens.default as number), // default: checked above
      largestContextWindow: Math.max(...candidates.map((c) => c.contextWindow)),
      tenantVerdicts,
      verdict: new Uint8Array(n),
      quality: new Float64Array(n),
      cost: new Float64Array(n),
      latency: new Float64Array(n),
      score: new Float64Array(n),
    });
  }

  return {
    decide(request, decideOptions = {}) {
      const { task_type: taskType, complexity, preferred_model: preferred } = request;
      const route = routes.get(taskType);
      if (route === undefined) throw unknownTaskType(taskType, catalog.taskTypes);
      const tenant = decideOptions.tenant ?? 'default';
      const limits = readLimits(request.context);
      const optimize = limits.optimize ?? decideOptions.optimize ?? tenants[tenant]?.optimize ?? routing.optimize;
      const weights = routing.weights[optimize];

      const promptTokens = tokenizer.countPromptTokens(request.context);
      const needed = promptTokens + route.outputTokens;
      const { candidates, verdict, quality, cost, latency, score } = route;
      const tenantVerdicts = route.tenantVerdicts.get(tenant) ?? NO_TENANT_VERDICTS;
      // Only the tenant's own outcomes move its figures: another tenant's feedback cannot steer this choice.
      const learned = estimates.forTenant(tenant);
      const only = decideOptions.onlyModels;

      let eligibleCount = 0;
      let minCost = Infinity;
      let minLatency = Infinity;
      let maxLatency = -Infinity;
      for (let i = 0; i < candidates.length; i++) {
        const c = candidates[i] as Candidate;
        verdict[i] = ELIGIBLE;
        if (only !== undefined && !only.includes(c.id)) verdict[i] = POLICY;
        else if (tenantVerdicts.length > 0 && tenantVerdicts[i] !== ELIGIBLE) verdict[i] = tenantVerdicts[i] as number;
        else if ((c.capabilities & limits.capabilities) !== limits.capabilities) verdict[i] = CAPABILITY;
        else if (!health.available(c.spec)) verdict[i] = CIRCUIT;
        else if (c.contextWindow < needed) verdict[i] = WINDOW;
        if (verdict[i] !== ELIGIBLE) continue;

        const estimate: ModelEstimate = learned.estimate(c.id, taskType, complexity, c.priors[complexity]);
        const usd = (promptTokens * c.inputPrice + route.outputTokens * c.outputPrice) / 1e6;
        quality[i] = estimate.quality;
        cost[i] = usd;
        latency[i] = estimate.latencyMs ?? NaN;
        if (usd > limits.maxCost) verdict[i] = COST;
        else if (limits.maxLatencyMs !== undefined && !(estimate.latencyMs !== null && estimate.latencyMs <= limits.maxLatencyMs)) {
          verdict[i] = LATENCY;
        }
        if (verdict[i] !== ELIGIBLE) continue;

        eligibleCount++;
        const flooredCost = usd > COST_FLOOR_USD ? usd : COST_FLOOR_USD;
        if (flooredCost < minCost) minCost = flooredCost;
        if (estimate.latencyMs !== null) {
          const ms = estimate.latencyMs > LATENCY_FLOOR_MS ? estimate.latencyMs : LATENCY_FLOOR_MS;
          if (ms < minLatency) minLatency = ms;
          if (ms > maxLatency) maxLatency = ms;
        }
      }

      if (eligibleCount === 0) {
        throw noEligibleModel({
          taskType,
          promptTokens,
          expectedOutputTokens: route.outputTokens,
          largestContextWindow: route.largestContextWindow,
          excluded: excludedBy(route),
        });
      }

      const order: number[] = [];
      const latencyKnown = minLatency !== Infinity;
      const logMinCost = Math.log10(minCost);
      const logMinLatency = latencyKnown ? Math.log10(minLatency) : 0;
      const logMaxLatency = latencyKnown ? Math.log10(maxLatency) : 0;
      for (let i = 0; i < candidates.length; i++) {
        if (verdict[i] !== ELIGIBLE) continue;
        const usd = cost[i] as number;
        const ms = latency[i] as number;
        const costTerm = Math.log10(usd > COST_FLOOR_USD ? usd : COST_FLOOR_USD) - logMinCost;
        const latencyTerm = !latencyKnown
          ? 0
          : Number.isNaN(ms)
            ? logMaxLatency - logMinLatency
            : Math.log10(ms > LATENCY_FLOOR_MS ? ms : LATENCY_FLOOR_MS) - logMinLatency;
        score[i] = weights.quality * (quality[i] as number) - weights.cost * costTerm - weights.latency * latencyTerm;
        order.push(i);
      }
      order.sort((a, b) => {
        const bySCore = (score[b] as number) - (score[a] as number);
        if (Math.abs(bySCore) > 1e-12) return bySCore;
        if (quality[a] !== quality[b]) return (quality[b] as number) - (quality[a] as number);
        if (cost[a] !== cost[b]) return (cost[a] as number) - (cost[b] as number);
        const [idA, idB] = [(candidates[a] as Candidate).id, (candidates[b] as Candidate).id];
        return idA < idB ? -1 : idA > idB ? 1 : 0;
      });

      const figures = (i: number): Figures => ({
        model: (candidates[i] as Candidate).id,
        quality: quality[i] as number,
        cost: cost[i] as number,
        latencyMs: Number.isNaN(latency[i]) ? null : (latency[i] as number),
        score: score[i] as number,
      });
      const task = `${taskType}/${complexity}`;
      const top = order[0] as number;

      let preferredAt = -1;
      if (preferred !== undefined) {
        for (let k = 0; k < order.length; k++) if ((candidates[order[k] as number] as Candidate).id === preferred) preferredAt = k;
      }
      let head: string;
      if (preferredAt >= 0) {
        const [chosen] = order.splice(preferredAt, 1) as [number];
        order.unshift(chosen);
        head = describeChoice({
          task,
          optimize,
          weights,
          selected: figures(chosen),
          other: order.length > 1 ? figures(preferredAt === 0 ? (order[1] as number) : top) : undefined,
          kind: preferredAt === 0 ? 'preferred-and-top' : 'preferred',
        });
      } else {
        const random = decideOptions.random ?? defaultRandom;
        const exploring = order.length > 1 && routing.exploration > 0 && random() < routing.exploration;
        if (exploring) [order[0], order[1]] = [order[1] as number, order[0] as number];
        head = describeChoice({
          task,
          optimize,
          weights,
          selected: figures(order[0] as number),
          other: order.length > 1 ? figures(order[1] as number) : undefined,
          kind: exploring ? 'exploring' : 'top',
          exploration: routing.exploration,
        });
      }

      const selected = order[0] as number;
      const parts = [head];
      if (preferred !== undefined && preferredAt < 0) {
        parts.push(
          `preferred model '${preferred}' not honoured: ${whyNot(preferred, route, catalog, taskType, { promptTokens, needed, limits, tenant })}, chose ${(candidates[selected] as Candidate).id} instead`,
        );
      }
      const exclusions =
        eligibleCount === candidates.length
          ? ''
          : describeExclusions(excludedBy(route), { promptTokens, outputTokens: route.outputTokens, limits, tenant });
      if (exclusions !== '') parts.push(exclusions);

      const runnerUp = order.length > 1 ? (candidates[order[1] as number] as Candidate).id : null;
      return {
        selected_model: (candidates[selected] as Candidate).id,
        confidence: round(quality[selected] as number, 1e3),
        routing_reason: parts.join('; '),
        estimated_cost: round(cost[selected] as number, 1e8),
        ranked: order.map((i) => (candidates[i] as Candidate).spec),
        prompt_tokens: promptTokens,
        expected_output_tokens: route.outputTokens,
        task_type: taskType,
        complexity,
        optimize,
        tenant,
        runner_up: runnerUp,
      };
    },
  };
}

/** Models removed by each constraint in the last pass over `route`, constraints in check order. */
function excludedBy(route: TaskRoute): Partial<Record<Constraint, string[]>> {
  const excluded: Partial<Record<Constraint, string[]>> = {};
  for (let v = 1; v <= CONSTRAINTS.length; v++) {
    for (let i = 0; i < route.candidates.length; i++) {
      if (route.verdict[i] !== v) continue;
      (excluded[CONSTRAINTS[v - 1] as Constraint] ??= []).push((route.candidates[i] as Candidate).id);
    }
  }
  return excluded;
}

function whyNot(
  preferred: string,
  route: TaskRoute,
  catalog: ModelCatalog,
  taskType: string,
  request: { promptTokens: number; needed: number; limits: RouteLimits; tenant: string },
): string {
  const spec = catalog.getModel(preferred);
  if (spec === undefined) return 'unknown model';
  const index = route.candidates.findIndex((c) => c.id === preferred);
  if (index < 0) return `it does not serve task type '${taskType}'`;
  const constraint = CONSTRAINTS[(route.verdict[index] as number) - 1] as Constraint;
  return describeRefusal(constraint, {
    spec,
    tenant: request.tenant,
    limits: request.limits,
    promptTokens: request.promptTokens,
    outputTokens: route.outputTokens,
    cost: route.cost[index] as number,
    latencyMs: Number.isNaN(route.latency[index]) ? null : (route.latency[index] as number),
  });
}

function validateRouting(routing: RoutingSettings): RoutingSettings {
  if (!(OPTIMIZE_MODES as readonly string[]).includes(routing.optimize)) {
    throw invalidRouterConfig('routing.optimize', `must be one of ${OPTIMIZE_MODES.join(', ')} (got ${routing.optimize})`);
  }
  for (const mode of OPTIMIZE_MODES) {
    const weights = routing.weights[mode] as RankWeights | undefined;
    if (weights === undefined) throw invalidRouterConfig(`routing.weights.${mode}`, 'missing');
    for (const key of ['quality', 'cost', 'latency'] as const) {
      if (!Number.isFinite(weights[key]) || weights[key] < 0) {
        throw invalidRouterConfig(`routing.weights.${mode}.${key}`, `must be a non-negative number (got ${String(weights[key])})`);
      }
    }
  }
  if (!Number.isFinite(routing.exploration) || routing.exploration < 0 || routing.exploration > 1) {
    throw invalidRouterConfig('routing.exploration', `must be a number from 0 to 1 (got ${String(routing.exploration)})`);
  }
  return routing;
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

const round = (value: number, scale: number): number => Math.round(value * scale) / scale;
