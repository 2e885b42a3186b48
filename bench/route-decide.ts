// In-process routing decision latency: createRouteDecider over a synthetic 50-model catalog in
// which every model serves the benchmarked task type (the worst case: 50 candidates per decision),
// with the real learned estimates (fed with outcomes for every model, per tenant) and health read from a real
// breaker registry. Baseline, measured in the same run: counting a prompt's tokens alone,
// the part of every decision that does not depend on the catalog. `npm run bench:route` runs it
// first; `node bench/route-decide.ts` runs it alone. BENCH_DECISIONS overrides the sample size.
import { loadModelCatalog } from '../src/autonomous/ai-router/catalog.ts';
import { createRouteDecider, DEFAULT_ROUTING } from '../src/autonomous/ai-router/decide.ts';
import { createModelEstimates } from '../src/autonomous/ai-router/learning/index.ts';
import { createBreakerModelHealth } from '../src/autonomous/ai-router/proxy/model-health.ts';
import { createTokenizer } from '../src/autonomous/ai-router/tokenizer.ts';
import type { RouteRequest } from '../src/autonomous/ai-router/types.ts';
import { createBreakerRegistry } from '../src/platform/resilience/breakers.ts';

const MODELS = 50;
const ROUNDS = 5;
const TASKS = ['code', 'chat', 'summarization', 'classification', 'extraction', 'reasoning'];
const PROVIDERS = ['openai', 'anthropic', 'google', 'mistral', 'local'];
const CAPABILITY_SETS = [
  ['tools', 'vision', 'json_mode', 'streaming'],
  ['tools', 'json_mode', 'streaming'],
  ['tools', 'streaming'],
  ['json_mode'],
];

/** Deterministic pseudo-random numbers, so every run benchmarks the same catalog. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export function syntheticCatalog(models = MODELS) {
  const rand = lcg(42);
  const quality = () => {
    const base = 0.6 + rand() * 0.38;
    return { low: Math.min(1, base + 0.04), medium: base, high: Math.max(0, base - 0.15) };
  };
  return loadModelCatalog(
    Array.from({ length: models }, (_, i) => {
      const tasks = ['code', ...TASKS.slice(1).filter(() => rand() < 0.6)];
      const price = 0.05 * 10 ** (rand() * 2.5);
      const provider = PROVIDERS[i % PROVIDERS.length] as string;
      return {
        provider,
        model: `model-${String(i).padStart(2, '0')}`,
        task_types: tasks,
        context_window: [8_000, 32_000, 128_000, 200_000, 1_000_000][i % 5],
        input_price_per_mtok: Math.round(price * 1000) / 1000,
        output_price_per_mtok: Math.round(price * 4000) / 1000,
        quality: Object.fromEntries(tasks.map((t) => [t, quality()])),
        capabilities: CAPABILITY_SETS[i % CAPABILITY_SETS.length],
        typical_latency_ms: i % 7 === 0 ? null : Math.round(200 + rand() * 4000),
        deployments:
          i % 3 === 0
            ? [{ id: 'us-1' }, { id: 'eu-1', region: 'eu' }, { id: 'us-2', weight: 2 }]
            : [{ id: 'default', ...(i % 2 === 0 ? { region: 'eu' } : {}) }],
      };
    }),
  );
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

interface Timing {
  readonly label: string;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

/** Times `run` one call at a time (µs per call) after a warm-up of a tenth of the sample. */
function time(label: string, samples: number, run: (i: number) => unknown): Timing {
  for (let i = 0; i < samples / 10; i++) run(i);
  const us = new Float64Array(samples);
  let sink = 0;
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint();
    const result = run(i);
    us[i] = Number(process.hrtime.bigint() - start) / 1000;
    if (result !== undefined) sink++;
  }
  if (sink < 0) console.log(sink); // keeps the results observable
  us.sort();
  let total = 0;
  for (const v of us) total += v;
  return { label, p50: percentile(us, 0.5), p99: percentile(us, 0.99), mean: total / samples };
}

export function runDecideBench(samples = Number(process.env.BENCH_DECISIONS ?? 100_000)): Timing[] {
  const catalog = syntheticCatalog();
  const tokenizer = createTokenizer();
  tokenizer.warmUp();
  const estimates = createModelEstimates({ priorStrength: 20, halfLifeMs: 600_000, clock: { now: () => Date.now() } });
  // Evidence for every model on code/medium, so lookups hit learned entries rather than the prior;
  // learning is per tenant: the two tenants decided for, and 200 others beside them.
  const tenants = ['default', 'eu', ...Array.from({ length: 200 }, (_, i) => `tenant-${i}`)];
  for (const [spec, tenant] of catalog.models.flatMap((model) => tenants.map((name) => [model, name] as const))) {
    for (let k = 0; k < 10; k++) {
      const at = Date.now();
      estimates.record({
        tenant,
        evidence: 'call',
        model: spec.model,
        taskType: 'code',
        complexity: 'medium',
        success: k % 5 === 0 ? 0 : 1,
        latencyMs: 300 + k * 10,
        at,
      });
      estimates.record({
        tenant,
        evidence: 'outcome',
        model: spec.model,
        taskType: 'code',
        complexity: 'medium',
        success: k % 3 === 0 ? 0 : 1,
        at,
      });
    }
  }
  const breakers = createBreakerRegistry();
  const decider = createRouteDecider({
    catalog,
    tokenizer,
    expectedOutputTokens: { default: 500, code: 800 },
    routing: { ...DEFAULT_ROUTING, exploration: 0.02 },
    tenants: { eu: { allowed_regions: ['eu'] } },
    providers: { openai: { region: 'us' }, anthropic: { region: 'us' }, google: { region: 'us' }, mistral: { region: 'eu' }, local: {} },
    estimates,
    health: createBreakerModelHealth(breakers),
  });
  // Every call gets a prompt of its own, as requests do: the tokenizer remembers repeated long texts.
  let n = 0;
  const context = () => ({
    prompt: `Write a TypeScript function (#${++n}) that merges two sorted arrays without allocating more than one new array.`,
  });
  const request = (): RouteRequest => ({ task_type: 'code', complexity: 'medium', context: context() });
  const constrained = (): RouteRequest => ({
    task_type: 'code',
    complexity: 'medium',
    preferred_model: 'model-07',
    context: { ...context(), max_cost: 0.01, max_latency_ms: 3000, capabilities: ['tools', 'json_mode'], optimize: 'cost' },
  });
  const candidates = catalog.modelsForTask('code').length;
  const ranked = decider.decide(request()).ranked.length;

  const cases: Array<[string, () => unknown]> = [
    ['baseline: token count of the prompt alone', () => tokenizer.countPromptTokens(context())],
    [`decide, ${candidates} candidates (${ranked} eligible), balanced`, () => decider.decide(request())],
    ['decide, tenant eu + max_cost + max_latency_ms + capabilities + preferred', () => decider.decide(constrained(), { tenant: 'eu' })],
  ];
  // Rounds alternate between the cases so that load from other processes falls on all of them
  // alike; each figure is the median over rounds, as in the HTTP part of bench:route.
  const byCase = cases.map((): Timing[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    cases.forEach(([label, run], i) => byCase[i]?.push(time(label, Math.ceil(samples / ROUNDS), run)));
  }
  return byCase.map((rounds) => {
    const median = (pick: (t: Timing) => number): number => rounds.map(pick).sort((a, b) => a - b)[Math.floor(rounds.length / 2)] as number;
    return { label: (rounds[0] as Timing).label, p50: median((t) => t.p50), p99: median((t) => t.p99), mean: median((t) => t.mean) };
  });
}

export function formatDecideBench(timings: readonly Timing[]): string {
  const rows = timings.map(
    (t) => `${t.label.padEnd(76)} ${t.p50.toFixed(1).padStart(7)} ${t.p99.toFixed(1).padStart(7)} ${t.mean.toFixed(1).padStart(7)}`,
  );
  const worst = Math.max(...timings.slice(1).map((t) => t.p99));
  return [
    `in-process decision latency, ${MODELS}-model synthetic catalog (µs per call; medians of ${ROUNDS} alternating rounds)`,
    `${'case'.padEnd(76)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'mean'.padStart(7)}`,
    ...rows,
    `target: decision p99 < 1 ms with ${MODELS} models → ${worst < 1000 ? 'met' : 'NOT met'} (worst p99 ${worst.toFixed(1)} µs)`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`bench:route (decide) — node ${process.version}`);
  console.log(formatDecideBench(runDecideBench()));
}
