import { randomUUID } from 'node:crypto';
import type { AiConfig } from '../config.ts';
import type { Tenancy } from '../../../platform/http/caller.ts';
import type { ModelCatalog } from '../catalog.ts';
import type { DecideOptions, RankedDecision } from '../decide.ts';
import type { Tokenizer } from '../tokenizer.ts';
import type { Complexity, ModelSpec, RouteRequest } from '../types.ts';
import { allowedFor } from './balancer.ts';
import type { ChatCompletionBodyType } from './chat-request.ts';
import { requiredCapabilities } from './chat-request.ts';
import type { DeploymentDirectory } from './deployments.ts';
import { isResolved } from './deployments.ts';
import { modelNotAllowed, unknownModel } from './errors.ts';

/** What the proxy needs from the router: a ranked decision for a tenant. */
export interface RankingDecider {
  decide(request: RouteRequest, options?: DecideOptions): RankedDecision;
}

/** Who serves a call, in the order to try them, and what the call was classified as. */
export interface CallPlan {
  readonly requestId: string;
  /** Set when the router decided (`auto` or a policy); null for a concrete model. */
  readonly decisionId: string | null;
  readonly confidence: number | null;
  readonly taskType: string;
  readonly complexity: Complexity;
  /** First the model to call, then the models to fall back to. */
  readonly candidates: readonly ModelSpec[];
  readonly promptTokens: number;
  readonly expectedOutputTokens: number;
}

export interface PlannerOptions {
  readonly ai: AiConfig;
  readonly catalog: () => ModelCatalog | null;
  readonly decider: RankingDecider;
  readonly tokenizer: Pick<Tokenizer, 'countPromptTokens'>;
  readonly directory: DeploymentDirectory;
}

export type Planner = (body: ChatCompletionBodyType, caller: Tenancy, hasImages: boolean) => CallPlan;

/**
 * Plans calls: `auto` and routing policy names go through the decider (task type, complexity and
 * optimisation from the request's `blocks`, else the policy, else `ai.proxy` defaults; required
 * capabilities inferred from the request); a catalog model id is that model alone, its other
 * deployments being the fallback.
 * @throws BlocksError UNKNOWN_MODEL (404), MODEL_NOT_ALLOWED (403), and the decider's 4xx.
 */
export function createPlanner(options: PlannerOptions): Planner {
  const { ai } = options;
  const expectedOutput = (taskType: string): number => ai.expected_output_tokens[taskType] ?? ai.expected_output_tokens['default'] ?? 0;

  return (body, caller, hasImages) => {
    const requestId = randomUUID();
    const policy = Object.hasOwn(ai.policies, body.model) ? ai.policies[body.model] : undefined;
    const hints = body.blocks ?? {};
    const taskType = hints.task_type ?? policy?.task_type ?? ai.proxy.default_task_type;
    const complexity = hints.complexity ?? policy?.complexity ?? ai.proxy.default_complexity;
    const context = { messages: body.messages };

    if (body.model === 'auto' || policy !== undefined) {
      const routeContext: Record<string, unknown> = { ...context, capabilities: requiredCapabilities(body, hasImages) };
      if (hints.optimize !== undefined) routeContext['optimize'] = hints.optimize;
      if (hints.max_cost !== undefined) routeContext['max_cost'] = hints.max_cost;
      if (hints.max_latency_ms !== undefined) routeContext['max_latency_ms'] = hints.max_latency_ms;
      const decision = options.decider.decide(
        { task_type: taskType, complexity, context: routeContext },
        {
          tenant: caller.tenant,
          ...(policy?.models === undefined ? {} : { onlyModels: policy.models }),
          ...(policy?.optimize === undefined ? {} : { optimize: policy.optimize }),
        },
      );
      return {
        requestId,
        decisionId: randomUUID(),
        confidence: decision.confidence,
        taskType: decision.task_type,
        complexity: decision.complexity,
        candidates: decision.ranked,
        promptTokens: decision.prompt_tokens,
        expectedOutputTokens: decision.expected_output_tokens,
      };
    }

    const model = options.catalog()?.getModel(body.model);
    if (model === undefined) throw unknownModel(body.model, Object.keys(ai.policies));
    const placement = ai.tenants[caller.tenant];
    if (placement !== undefined && !options.directory.slotsOf(model).some((slot) => isResolved(slot) && allowedFor(slot, placement))) {
      throw modelNotAllowed(model.model, caller.tenant);
    }
    return {
      requestId,
      decisionId: null,
      confidence: null,
      taskType,
      complexity,
      candidates: [model],
      promptTokens: options.tokenizer.countPromptTokens(context),
      expectedOutputTokens: expectedOutput(taskType),
    };
  };
}

/** USD for a call on `model`, prices being per million tokens; rounded to 10 decimals. */
export const costOf = (model: ModelSpec, promptTokens: number, completionTokens: number): number =>
  Math.round(((promptTokens * model.input_price_per_mtok + completionTokens * model.output_price_per_mtok) / 1e6) * 1e10) / 1e10;

/**
 * The most a call may cost: the prompt plus the longest answer allowed (`max_tokens`, else the
 * task type's expected output) on the dearest model among those it may be tried on.
 */
export function worstCaseCost(plan: CallPlan, body: ChatCompletionBodyType, maxModels: number): number {
  const output = body.max_completion_tokens ?? body.max_tokens ?? plan.expectedOutputTokens;
  let worst = 0;
  for (const model of plan.candidates.slice(0, maxModels)) worst = Math.max(worst, costOf(model, plan.promptTokens, output));
  return worst;
}
