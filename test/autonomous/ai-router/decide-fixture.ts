import { loadModelCatalog, type ModelCatalog } from '../../../src/autonomous/ai-router/catalog.ts';
import { createRouteDecider, DEFAULT_ROUTING, type RouteDeciderOptions } from '../../../src/autonomous/ai-router/decide.ts';
import type { ModelEstimate, ModelEstimates } from '../../../src/autonomous/ai-router/learning/estimates.ts';
import { createTokenizer } from '../../../src/autonomous/ai-router/tokenizer.ts';
import type { Complexity, RouteRequest } from '../../../src/autonomous/ai-router/types.ts';
import { type BlocksError, isBlocksError } from '../../../src/platform/errors.ts';

export const tokenizer = createTokenizer();
tokenizer.warmUp();

const q = (low: number, medium: number, high: number) => ({ low, medium, high });

/*
 * code (1000 expected output tokens; no prompt → cost = 1000 × output price / 1e6):
 *   premium  q .95/.90/.85  $0.01    2000 ms  every capability         anthropic (us)
 *   value    q .93/.88/.70  $0.001   1000 ms  default capabilities     openai (us)
 *   budget   q .80/.70/.50  $0.0001   500 ms  json_mode only, 4000-token window   google (eu)
 *   fast     q .92/.85/.72  $0.005    100 ms  default capabilities     openai: us-1 (us) and eu-1 (eu)
 * chat (100 expected output tokens):
 *   value    as above (quality .9 everywhere)
 *   mystery  q .99, nearly free, no typical latency                    local (no region)
 *
 * Balanced scores for code/medium (see decide.ts): premium .635, value .73, fast .68, budget .665.
 */
export const rawModels = [
  {
    provider: 'anthropic',
    model: 'premium',
    task_types: ['code'],
    context_window: 100_000,
    input_price_per_mtok: 10,
    output_price_per_mtok: 10,
    quality: { code: q(0.95, 0.9, 0.85) },
    capabilities: ['tools', 'vision', 'json_mode', 'streaming'],
    typical_latency_ms: 2000,
  },
  {
    provider: 'openai',
    model: 'value',
    task_types: ['code', 'chat'],
    context_window: 100_000,
    input_price_per_mtok: 1,
    output_price_per_mtok: 1,
    quality: { code: q(0.93, 0.88, 0.7), chat: q(0.9, 0.9, 0.9) },
    typical_latency_ms: 1000,
  },
  {
    provider: 'google',
    model: 'budget',
    task_types: ['code'],
    context_window: 4000,
    input_price_per_mtok: 0.1,
    output_price_per_mtok: 0.1,
    quality: { code: q(0.8, 0.7, 0.5) },
    capabilities: ['json_mode'],
    typical_latency_ms: 500,
  },
  {
    provider: 'openai',
    model: 'fast',
    task_types: ['code'],
    context_window: 100_000,
    input_price_per_mtok: 5,
    output_price_per_mtok: 5,
    quality: { code: q(0.92, 0.85, 0.72) },
    typical_latency_ms: 100,
    deployments: [{ id: 'us-1' }, { id: 'eu-1', region: 'eu' }],
  },
  {
    provider: 'local',
    model: 'mystery',
    task_types: ['chat'],
    context_window: 100_000,
    input_price_per_mtok: 0.01,
    output_price_per_mtok: 0.01,
    quality: { chat: q(0.99, 0.99, 0.99) },
  },
];

export const catalog: ModelCatalog = loadModelCatalog(rawModels);

export const providers = { openai: { region: 'us' }, anthropic: { region: 'us' }, google: { region: 'eu' }, local: {} };
export const tenants = {
  eu: { allowed_regions: ['eu'] },
  'no-google': { allowed_providers: ['openai', 'anthropic'] },
  thrifty: { optimize: 'cost' as const },
  anywhere: { allowed_regions: ['us', 'eu', 'apac'] },
};
export const expectedOutputTokens = { default: 1000, chat: 100 };

/** A decider over the fixture catalog with default weights, no exploration; `overrides` replace any option. */
export const makeDecider = (overrides: Partial<RouteDeciderOptions> = {}) =>
  createRouteDecider({ catalog, tokenizer, expectedOutputTokens, providers, tenants, routing: DEFAULT_ROUTING, ...overrides });

/** `context` carrying constraints but no prompt tokens (an empty prompt is 0 tokens). */
export const only = (context: Record<string, unknown>): Record<string, unknown> => ({ prompt: '', ...context });

/** A prompt of about `tokens` tokens ("word" repeated). */
export const promptOf = (tokens: number) => ({ prompt: ' word'.repeat(tokens) });

export const code = (complexity: Complexity, extra: Partial<RouteRequest> = {}): RouteRequest => ({
  task_type: 'code',
  complexity,
  ...extra,
});

export function errorOf(run: () => unknown): BlocksError {
  try {
    run();
  } catch (error) {
    if (isBlocksError(error)) return error;
    throw error;
  }
  throw new Error('did not throw');
}

/**
 * Learned figures given per model (a test double of the learning port, which is a pure in-memory
 * lookup); models not listed get their prior, and every call is recorded with the tenant asked
 * for. With `tenant`, only that tenant has learned anything: every other gets the prior.
 */
export function givenEstimates(
  figures: Record<string, Partial<ModelEstimate>>,
  options: { tenant?: string } = {},
): ModelEstimates & {
  calls: Array<{
    tenant: string;
    model: string;
    taskType: string;
    complexity: Complexity;
    prior: { quality: number; latencyMs: number | null };
  }>;
} {
  const calls: Array<{
    tenant: string;
    model: string;
    taskType: string;
    complexity: Complexity;
    prior: { quality: number; latencyMs: number | null };
  }> = [];
  return {
    calls,
    forTenant: (tenant) => ({
      estimate(model, taskType, complexity, prior) {
        calls.push({ tenant, model, taskType, complexity, prior });
        const given = options.tenant === undefined || options.tenant === tenant ? figures[model] : undefined;
        return {
          quality: given?.quality ?? prior.quality,
          observations: given?.observations ?? 0,
          latencyMs: given?.latencyMs === undefined ? prior.latencyMs : given.latencyMs,
        };
      },
    }),
  };
}
