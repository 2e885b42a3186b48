import { describe, expect, it } from 'vitest';
import { loadModelCatalog } from '../../../src/autonomous/ai-router/catalog.ts';
import { createRouteDecider, DEFAULT_ROUTING, type RoutingSettings } from '../../../src/autonomous/ai-router/decide.ts';
import {
  catalog,
  code,
  errorOf,
  expectedOutputTokens,
  givenEstimates,
  makeDecider,
  only,
  promptOf,
  rawModels,
  tokenizer,
} from './decide-fixture.ts';

const ids = (decision: { ranked: ReadonlyArray<{ model: string }> }) => decision.ranked.map((m) => m.model);
const withWeights = (mode: keyof RoutingSettings['weights'], weights: { quality: number; cost: number; latency: number }) => ({
  ...DEFAULT_ROUTING,
  weights: { ...DEFAULT_ROUTING.weights, [mode]: weights },
});
const never = (): number => {
  throw new Error('random must not be drawn');
};

describe('decide: ranking by quality against cost and latency', () => {
  const decider = makeDecider({ random: never });

  it('balanced: a cheaper model close in quality beats a dearer one, and the runner-up is named', () => {
    // Scores: value .88 − .1·log10(10) − .05·log10(10) = .73; fast .85 − .1·log10(50) = .68; budget .665; premium .635.
    const decision = decider.decide(code('medium'));
    expect(decision.selected_model).toBe('value');
    expect(ids(decision)).toEqual(['value', 'fast', 'budget', 'premium']);
    expect(decision.runner_up).toBe('fast');
    expect(decision.optimize).toBe('balanced');
    expect(decision.routing_reason).toBe(
      'value: ranked first for code/medium optimizing balanced (weights quality 1, cost 0.1, latency 0.05): ' +
        '5× lower cost ($0.001 vs $0.005) and higher quality (0.88 vs 0.85) outweigh 10× higher latency (1000 ms vs 100 ms) against runner-up fast',
    );
  });

  it('balanced: a large enough quality gap pays for a dearer model', () => {
    // code/high: premium .85 − .2 − .065 = .585 beats fast .72 − .17 = .55 and value .70 − .15 = .55.
    const decision = decider.decide(code('high'));
    expect(decision.selected_model).toBe('premium');
    expect(decision.routing_reason).toContain('higher quality (0.85 vs 0.72) outweighs');
    expect(decision.routing_reason).toContain('against runner-up fast');
  });

  it.each([
    ['quality', ['premium', 'value', 'fast', 'budget']],
    ['cost', ['budget', 'value', 'fast', 'premium']],
    ['latency', ['fast', 'budget', 'value', 'premium']],
    ['balanced', ['value', 'fast', 'budget', 'premium']],
  ] as const)('optimize %s ranks %j', (optimize, order) => {
    const decision = decider.decide(code('medium', { context: only({ optimize }) }));
    expect(ids(decision)).toEqual(order);
    expect(decision.selected_model).toBe(order[0]);
    expect(decision.optimize).toBe(optimize);
    expect(decision.routing_reason).toContain(`optimizing ${optimize}`);
  });

  it('quality mode names the quality difference as the deciding factor', () => {
    const decision = decider.decide(code('medium', { context: only({ optimize: 'quality' }) }));
    expect(decision.routing_reason).toMatch(
      /^premium: ranked first for code\/medium optimizing quality \(weights quality 1, cost 0, latency 0\): higher quality \(0\.9 vs 0\.88\) than runner-up value$/,
    );
  });

  it('uses the weights configured for the mode', () => {
    const costOnly = makeDecider({ routing: withWeights('balanced', { quality: 0, cost: 1, latency: 0 }) });
    expect(costOnly.decide(code('medium')).selected_model).toBe('budget');
    const latencyOnly = makeDecider({ routing: withWeights('balanced', { quality: 0, cost: 0, latency: 1 }) });
    expect(latencyOnly.decide(code('medium')).selected_model).toBe('fast');
    const qualityOnly = makeDecider({ routing: withWeights('balanced', { quality: 1, cost: 0, latency: 0 }) });
    expect(qualityOnly.decide(code('medium')).selected_model).toBe('premium');
  });

  it('uses the configured default mode when neither the request nor the tenant names one', () => {
    const d = makeDecider({ routing: { ...DEFAULT_ROUTING, optimize: 'latency' } });
    const decision = d.decide(code('medium'));
    expect(decision.optimize).toBe('latency');
    expect(decision.selected_model).toBe('fast');
  });

  it('is scale-free: multiplying every price or every latency by one factor changes no ranking', () => {
    const scaled = loadModelCatalog(
      rawModels.map((m) => ({
        ...m,
        input_price_per_mtok: m.input_price_per_mtok * 1000,
        output_price_per_mtok: m.output_price_per_mtok * 1000,
        ...(m.typical_latency_ms === undefined ? {} : { typical_latency_ms: m.typical_latency_ms * 7 }),
      })),
    );
    const d = makeDecider({ catalog: scaled });
    for (const optimize of ['quality', 'cost', 'latency', 'balanced']) {
      for (const complexity of ['low', 'medium', 'high'] as const) {
        const request = code(complexity, { context: only({ optimize }) });
        expect(ids(d.decide(request))).toEqual(ids(decider.decide(request)));
      }
    }
  });

  it('breaks a score tie by quality, then cost, then model id', () => {
    const twins = loadModelCatalog(
      ['b-twin', 'a-twin', 'dear'].map((model, i) => ({
        provider: 'p',
        model,
        task_types: ['chat'],
        context_window: 10_000,
        input_price_per_mtok: [1, 1, 9][i],
        output_price_per_mtok: [1, 1, 9][i],
        quality: { chat: { low: 0.9, medium: 0.9, high: 0.9 } },
      })),
    );
    const d = createRouteDecider({
      catalog: twins,
      tokenizer,
      expectedOutputTokens: { default: 10 },
      routing: withWeights('balanced', { quality: 1, cost: 0, latency: 0 }),
    });
    const decision = d.decide({ task_type: 'chat', complexity: 'low' });
    expect(ids(decision)).toEqual(['a-twin', 'b-twin', 'dear']);
    expect(decision.routing_reason).toContain('same score as runner-up b-twin (quality 0.9 at $0.00001), ahead by model id');
  });

  it('ranks a model of unknown latency as the slowest known one, and says when it is the only model', () => {
    // chat: mystery (.99, $0.000001, latency unknown) against value (.9, $0.0001, 1000 ms): no latency term, cost decides.
    const decision = decider.decide({ task_type: 'chat', complexity: 'low' });
    expect(ids(decision)).toEqual(['mystery', 'value']);
    expect(decision.routing_reason).toContain(
      '100× lower cost ($0.000001 vs $0.0001) and higher quality (0.99 vs 0.9) than runner-up value',
    );
    const alone = decider.decide({ task_type: 'chat', complexity: 'low' }, { onlyModels: ['mystery'] });
    expect(alone.routing_reason).toBe('mystery: the only eligible model for chat/low (quality 0.99 at $0.000001)');
    expect(alone.runner_up).toBeNull();
  });
});

describe('decide: learned estimates', () => {
  it('asks the estimates for every candidate with the catalog figures as the prior', () => {
    const estimates = givenEstimates({});
    makeDecider({ estimates }).decide(code('high'));
    expect(estimates.calls).toEqual([
      { tenant: 'default', model: 'premium', taskType: 'code', complexity: 'high', prior: { quality: 0.85, latencyMs: 2000 } },
      { tenant: 'default', model: 'value', taskType: 'code', complexity: 'high', prior: { quality: 0.7, latencyMs: 1000 } },
      { tenant: 'default', model: 'budget', taskType: 'code', complexity: 'high', prior: { quality: 0.5, latencyMs: 500 } },
      { tenant: 'default', model: 'fast', taskType: 'code', complexity: 'high', prior: { quality: 0.72, latencyMs: 100 } },
    ]);
  });

  it("ranks on the deciding tenant's estimates only: what another tenant learned does not move its choice", () => {
    const estimates = givenEstimates({ value: { quality: 0.5, observations: 40 } }, { tenant: 'acme' });
    const decider = makeDecider({ estimates });
    expect(decider.decide(code('medium'), { tenant: 'acme' }).selected_model).toBe('fast');
    expect(decider.decide(code('medium'), { tenant: 'globex' }).selected_model).toBe('value');
    expect(decider.decide(code('medium')).selected_model).toBe('value');
    expect(new Set(estimates.calls.map((c) => c.tenant))).toEqual(new Set(['acme', 'globex', 'default']));
  });

  it('moves traffic away from a model whose learned quality dropped', () => {
    const decision = makeDecider({ estimates: givenEstimates({ value: { quality: 0.5, observations: 40 } }) }).decide(code('medium'));
    expect(decision.selected_model).toBe('fast');
    expect(decision.confidence).toBe(0.85);
    expect(ids(decision)).toEqual(['fast', 'budget', 'premium', 'value']);
  });

  it('moves traffic to a model whose learned latency is better than its catalog figure', () => {
    const request = code('medium', { context: only({ optimize: 'latency' }) });
    expect(makeDecider().decide(request).selected_model).toBe('fast');
    const learned = makeDecider({ estimates: givenEstimates({ value: { latencyMs: 50 } }) }).decide(request);
    expect(learned.selected_model).toBe('value');
    expect(learned.routing_reason).toContain('2× lower latency (50 ms vs 100 ms)');
  });

  it('reports the learned quality of the selected model as confidence, rounded to 3 decimals', () => {
    const decision = makeDecider({ estimates: givenEstimates({ value: { quality: 0.87654 } }) }).decide(code('medium'));
    expect(decision.selected_model).toBe('value');
    expect(decision.confidence).toBe(0.877);
  });
});

describe('decide: exploration', () => {
  const exploring = (random: () => number) => makeDecider({ routing: { ...DEFAULT_ROUTING, exploration: 0.25 }, random });

  it('serves the runner-up when the draw falls below the exploration rate, and says so', () => {
    const decision = exploring(() => 0.2).decide(code('medium'));
    expect(decision.selected_model).toBe('fast');
    expect(ids(decision)).toEqual(['fast', 'value', 'budget', 'premium']);
    expect(decision.runner_up).toBe('value');
    expect(decision.confidence).toBe(0.85);
    expect(decision.routing_reason).toMatch(
      /^fast: exploring \(probability 0\.25\), the runner-up served instead of value, ranked first for code\/medium/,
    );
  });

  it('serves the top-ranked model otherwise', () => {
    expect(exploring(() => 0.25).decide(code('medium')).selected_model).toBe('value');
  });

  it('takes a per-decision random source over the decider’s', () => {
    expect(exploring(() => 0.99).decide(code('medium'), { random: () => 0 }).selected_model).toBe('fast');
  });

  it('draws nothing with exploration 0, with a single candidate, or when a preference is honoured', () => {
    expect(makeDecider({ random: never }).decide(code('medium')).selected_model).toBe('value');
    expect(exploring(never).decide(code('medium'), { onlyModels: ['budget'] }).selected_model).toBe('budget');
    expect(exploring(never).decide(code('medium', { preferred_model: 'premium' })).selected_model).toBe('premium');
  });

  it('explores at about the configured rate with a real random source', () => {
    const d = makeDecider({ routing: { ...DEFAULT_ROUTING, exploration: 0.1 } });
    let explored = 0;
    for (let i = 0; i < 4000; i++) if (d.decide(code('medium')).selected_model === 'fast') explored++;
    expect(explored / 4000).toBeGreaterThan(0.07);
    expect(explored / 4000).toBeLessThan(0.13);
  });
});

describe('decide: preferred model', () => {
  const decider = makeDecider({ random: never });

  it('honours an eligible preference and names what the ranking would choose', () => {
    const decision = decider.decide(code('medium', { preferred_model: 'premium' }));
    expect(decision.selected_model).toBe('premium');
    expect(decision.confidence).toBe(0.9);
    expect(ids(decision)).toEqual(['premium', 'value', 'fast', 'budget']);
    expect(decision.routing_reason).toMatch(
      /^premium: preferred model honoured for code\/medium \(quality 0\.9 at \$0\.01, 2000 ms\); optimizing balanced/,
    );
    expect(decision.routing_reason).toContain('the ranking would choose value: 10× lower cost ($0.001 vs $0.01)');
  });

  it('says when the preference is also ranked first', () => {
    const decision = decider.decide(code('medium', { preferred_model: 'value' }));
    expect(decision.routing_reason).toMatch(/^value: preferred model, also ranked first for code\/medium/);
    expect(decision.routing_reason).toContain('against runner-up fast');
  });

  it('says why a preference is not honoured and what was chosen instead', () => {
    const cases: Array<[string, Parameters<typeof decider.decide>, string]> = [
      [
        'capabilities',
        [code('medium', { preferred_model: 'value', context: only({ capabilities: ['vision'] }) })],
        "preferred model 'value' not honoured: it lacks vision, chose premium instead",
      ],
      [
        'max_cost',
        [code('medium', { preferred_model: 'premium', context: only({ max_cost: 0.002 }) })],
        "preferred model 'premium' not honoured: its estimated cost $0.01 exceeds max_cost $0.002, chose value instead",
      ],
      [
        'max_latency_ms',
        [code('medium', { preferred_model: 'value', context: only({ max_latency_ms: 600 }) })],
        "preferred model 'value' not honoured: its latency (1000 ms) exceeds max_latency_ms 600, chose fast instead",
      ],
      [
        'unknown latency',
        [{ task_type: 'chat', complexity: 'low', preferred_model: 'mystery', context: only({ max_latency_ms: 5000 }) }],
        "preferred model 'mystery' not honoured: its latency is unknown, so max_latency_ms 5000 cannot be promised, chose value instead",
      ],
      [
        'tenant regions',
        [code('medium', { preferred_model: 'premium' }), { tenant: 'eu' }],
        "preferred model 'premium' not honoured: none of its deployments is in a region tenant 'eu' allows, chose fast instead",
      ],
      [
        'tenant providers',
        [code('medium', { preferred_model: 'budget' }), { tenant: 'no-google' }],
        "preferred model 'budget' not honoured: tenant 'no-google' does not allow its provider (google), chose value instead",
      ],
      [
        'routing policy',
        [code('medium', { preferred_model: 'premium' }), { onlyModels: ['budget', 'fast'] }],
        "preferred model 'premium' not honoured: it is not among the routing policy's models, chose fast instead",
      ],
      [
        'task type',
        [code('medium', { preferred_model: 'mystery' })],
        "preferred model 'mystery' not honoured: it does not serve task type 'code', chose value instead",
      ],
      [
        'unknown model',
        [code('medium', { preferred_model: 'gpt-9' })],
        "preferred model 'gpt-9' not honoured: unknown model, chose value instead",
      ],
    ];
    for (const [label, args, reason] of cases) {
      const decision = decider.decide(...args);
      expect(decision.routing_reason, label).toContain(reason);
      expect(decision.selected_model, label).toBe(/chose (\S+) instead/.exec(reason)?.[1]);
    }
  });

  it('says so when the preference does not fit the context window', () => {
    const context = promptOf(3500);
    const tokens = tokenizer.countPromptTokens(context);
    const decision = decider.decide(code('medium', { preferred_model: 'budget', context }));
    expect(decision.selected_model).not.toBe('budget');
    expect(decision.routing_reason).toContain(
      `preferred model 'budget' not honoured: its context window (4000 tokens) is too small for ${tokens} prompt + 1000 expected output tokens, chose ${decision.selected_model} instead`,
    );
  });
});

describe('decide: estimated cost and prompt', () => {
  const decider = makeDecider();

  it('is prompt tokens × input price + expected output × output price, per million, in USD', () => {
    const context = { messages: [{ role: 'user', content: 'Hello, world!' }], input: 'hello world', other: 'x'.repeat(500) };
    const decision = decider.decide(code('medium', { context }));
    expect(decision.prompt_tokens).toBe(4 + 2);
    expect(decision.expected_output_tokens).toBe(1000);
    expect(decision.selected_model).toBe('value');
    expect(decision.estimated_cost).toBe((6 * 1 + 1000 * 1) / 1e6);
  });

  it('uses the expected output of the task type and rounds to 8 decimals', () => {
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', context: { prompt: 'hello world' } });
    expect(decision.expected_output_tokens).toBe(100);
    expect(decision.selected_model).toBe('mystery');
    expect(decision.estimated_cost).toBe(Math.round(((2 * 0.01 + 100 * 0.01) / 1e6) * 1e8) / 1e8);
  });

  it('returns the task, complexity and tenant it decided for', () => {
    const decision = decider.decide(code('low'), { tenant: 'acme' });
    expect(decision).toMatchObject({ task_type: 'code', complexity: 'low', tenant: 'acme' });
    expect(decider.decide(code('low')).tenant).toBe('default');
  });
});

describe('decide: errors and settings', () => {
  it('fails with UNKNOWN_TASK_TYPE naming the known task types', () => {
    const error = errorOf(() => makeDecider().decide({ task_type: 'vision', complexity: 'low' }));
    expect(error.code).toBe('UNKNOWN_TASK_TYPE');
    expect(error.status).toBe(422);
    expect(error.detail).toBe("Unknown task type 'vision'; known task types: chat, code.");
  });

  const build = (overrides: Parameters<typeof makeDecider>[0]) => () => makeDecider(overrides);
  it.each([
    [{ expectedOutputTokens: { chat: 10 } }, 'expected_output_tokens.default: missing'],
    [{ expectedOutputTokens: { default: 10, vision: 5 } }, "expected_output_tokens.vision: no model serves task type 'vision'"],
    [{ expectedOutputTokens: { default: -1 } }, 'expected_output_tokens.default: must be a non-negative integer (got -1)'],
    [{ routing: { ...DEFAULT_ROUTING, exploration: 1.5 } }, 'routing.exploration: must be a number from 0 to 1 (got 1.5)'],
    [
      { routing: withWeights('cost', { quality: 1, cost: -1, latency: 0 }) },
      'routing.weights.cost.cost: must be a non-negative number (got -1)',
    ],
    [
      { routing: { ...DEFAULT_ROUTING, optimize: 'speed' as never } },
      'routing.optimize: must be one of cost, quality, latency, balanced (got speed)',
    ],
  ])('rejects %j', (overrides, detail) => {
    expect(build(overrides)).toThrow(expect.objectContaining({ code: 'INVALID_ROUTER_CONFIG', detail }));
  });

  it('runs on the catalog alone: prior estimates, every model available, no exploration', () => {
    const bare = createRouteDecider({ catalog, tokenizer, expectedOutputTokens });
    expect(bare.decide(code('medium')).selected_model).toBe('value');
  });
});
