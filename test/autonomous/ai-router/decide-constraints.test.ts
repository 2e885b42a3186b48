import { describe, expect, it } from 'vitest';
import { loadModelCatalog } from '../../../src/autonomous/ai-router/catalog.ts';
import { createBreakerModelHealth } from '../../../src/autonomous/ai-router/proxy/model-health.ts';
import { allowedDeployments, tenantVerdict } from '../../../src/autonomous/ai-router/tenant-policy.ts';
import type { Clock } from '../../../src/platform/clock.ts';
import { createBreakerRegistry, type BreakerRegistry } from '../../../src/platform/resilience/breakers.ts';
import { catalog, code, errorOf, makeDecider, only, promptOf, providers, tokenizer } from './decide-fixture.ts';

const ids = (decision: { ranked: ReadonlyArray<{ model: string }> }) => decision.ranked.map((m) => m.model);

describe('hard constraints', () => {
  const decider = makeDecider();

  it('context window: removes a model whose window cannot hold the prompt plus the expected output, and says so', () => {
    // budget's window is 4000 tokens and code expects 1000 output tokens.
    const fits = promptOf(2900);
    expect(tokenizer.countPromptTokens(fits) + 1000).toBeLessThanOrEqual(4000);
    expect(ids(decider.decide(code('medium', { context: fits })))).toContain('budget');

    const tooLong = promptOf(3100);
    const tokens = tokenizer.countPromptTokens(tooLong);
    expect(tokens).toBeLessThanOrEqual(4000);
    expect(tokens + 1000).toBeGreaterThan(4000);
    const decision = decider.decide(code('medium', { context: tooLong }));
    expect(ids(decision)).not.toContain('budget');
    expect(decision.routing_reason).toContain(`context window too small for ${tokens} prompt + 1000 expected output tokens: budget`);
  });

  it('max_cost: removes models whose estimated cost is above it; a cost equal to it passes', () => {
    const decision = decider.decide(code('medium', { context: only({ max_cost: 0.001, optimize: 'quality' }) }));
    expect(ids(decision)).toEqual(['value', 'budget']);
    expect(decision.routing_reason).toContain('estimated cost over max_cost $0.001: premium, fast');
  });

  it('max_latency_ms: removes models whose learned latency is above it', () => {
    const decision = decider.decide(code('medium', { context: only({ max_latency_ms: 600 }) }));
    expect(ids(decision)).toEqual(['fast', 'budget']);
    expect(decision.routing_reason).toContain('latency over max_latency_ms 600 or unknown: premium, value');
  });

  it('max_latency_ms: removes a model whose latency is unknown', () => {
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', context: only({ max_latency_ms: 5000 }) });
    expect(ids(decision)).toEqual(['value']);
    expect(decision.routing_reason).toContain('latency over max_latency_ms 5000 or unknown: mystery');
  });

  it.each([
    [['json_mode'], ['value', 'fast', 'budget', 'premium']],
    [['tools'], ['value', 'fast', 'premium']],
    [['vision', 'tools'], ['premium']],
    [[], ['value', 'fast', 'budget', 'premium']],
  ])('capabilities %j: keeps only models with all of them', (capabilities, kept) => {
    const decision = decider.decide(code('medium', { context: only({ capabilities }) }));
    expect(ids(decision)).toEqual(kept);
    if (kept.length < 4) expect(decision.routing_reason).toContain(`lacking ${capabilities.join(' and ')}`);
  });

  it('routing policy: only the listed models serve, and their absence is not explained', () => {
    const decision = decider.decide(code('medium'), { onlyModels: ['premium', 'budget', 'not-a-model'] });
    expect(ids(decision)).toEqual(['budget', 'premium']);
    expect(decision.routing_reason).not.toContain('routing policy');
  });
});

describe('tenant policy', () => {
  const decider = makeDecider();

  it('allowed_regions: a model qualifies through any deployment in an allowed region, its own or its provider’s', () => {
    // fast has us-1 (openai: us) and eu-1 (region eu); budget's provider google is in eu.
    const decision = decider.decide(code('medium'), { tenant: 'eu' });
    expect(ids(decision)).toEqual(['fast', 'budget']);
    expect(decision.routing_reason).toContain("no deployment in a region allowed for tenant 'eu': premium, value");
  });

  it('allowed_regions: a deployment of unknown region never qualifies', () => {
    // mystery runs on `local`, which has no region.
    const decision = decider.decide({ task_type: 'chat', complexity: 'low' }, { tenant: 'anywhere' });
    expect(ids(decision)).toEqual(['value']);
    expect(decider.decide({ task_type: 'chat', complexity: 'low' }).selected_model).toBe('mystery');
  });

  it('allowed_providers: removes models with no deployment on an allowed provider', () => {
    const decision = decider.decide(code('medium', { context: only({ optimize: 'cost' }) }), { tenant: 'no-google' });
    expect(ids(decision)).toEqual(['value', 'fast', 'premium']);
    expect(decision.routing_reason).toContain("provider not allowed for tenant 'no-google': budget");
  });

  it('optimize: the tenant’s mode applies unless the policy or the request names one (request first)', () => {
    expect(decider.decide(code('medium'), { tenant: 'thrifty' })).toMatchObject({ selected_model: 'budget', optimize: 'cost' });
    expect(decider.decide(code('medium'), { tenant: 'thrifty', optimize: 'latency' })).toMatchObject({
      selected_model: 'fast',
      optimize: 'latency',
    });
    expect(
      decider.decide(code('medium', { context: only({ optimize: 'quality' }) }), { tenant: 'thrifty', optimize: 'latency' }),
    ).toMatchObject({
      selected_model: 'premium',
      optimize: 'quality',
    });
  });

  it('a tenant without a policy may use every model', () => {
    expect(ids(decider.decide(code('medium'), { tenant: 'someone-else' }))).toEqual(['value', 'fast', 'budget', 'premium']);
  });

  it('names the deployments the proxy may call for the tenant', () => {
    const fast = catalog.getModel('fast');
    if (fast === undefined) throw new Error('fixture');
    expect(allowedDeployments(fast, { allowed_regions: ['eu'] }, providers).map((d) => d.id)).toEqual(['eu-1']);
    expect(allowedDeployments(fast, { allowed_regions: ['us'] }, providers).map((d) => d.id)).toEqual(['us-1']);
    expect(allowedDeployments(fast, undefined, providers).map((d) => d.id)).toEqual(['us-1', 'eu-1']);
    expect(tenantVerdict(fast, { allowed_providers: ['openai'], allowed_regions: ['apac'] }, providers)).toBe('tenant_regions');
    expect(tenantVerdict(fast, { allowed_providers: ['google'], allowed_regions: ['eu'] }, providers)).toBe('tenant_providers');
  });

  it('requires provider and region on the same deployment', () => {
    // split: its openai deployment is in us, its google deployment in eu; the tenant wants openai in eu.
    const split = loadModelCatalog([
      {
        provider: 'openai',
        model: 'split',
        task_types: ['code'],
        context_window: 10_000,
        input_price_per_mtok: 1,
        output_price_per_mtok: 1,
        quality: { code: { low: 0.9, medium: 0.9, high: 0.9 } },
        deployments: [{ id: 'us' }, { id: 'g-eu', provider: 'google' }],
      },
    ]).getModel('split');
    if (split === undefined) throw new Error('fixture');
    expect(tenantVerdict(split, { allowed_providers: ['openai'], allowed_regions: ['eu'] }, providers)).toBe('tenant_regions');
    expect(tenantVerdict(split, { allowed_regions: ['eu'] }, providers)).toBeNull();
  });
});

describe('open circuit breakers (a real registry, opened by real failures)', () => {
  const manualClock = (): Clock & { advance(ms: number): void } => {
    let now = 1_700_000_000_000;
    return { now: () => now, sleep: async () => undefined, advance: (ms) => void (now += ms) };
  };
  const fail = async (registry: BreakerRegistry, name: string, times = 2): Promise<void> => {
    for (let i = 0; i < times; i++) {
      await expect(registry.execute(name, () => Promise.reject(new Error('provider down')))).rejects.toThrow('provider down');
    }
    expect(registry.state(name)).toBe('open');
  };
  const setup = () => {
    const clock = manualClock();
    const registry = createBreakerRegistry({ failureThreshold: 2, recoveryTimeoutMs: 1000, clock });
    return { clock, registry, decider: makeDecider({ health: createBreakerModelHealth(registry) }) };
  };
  const best = code('medium', { context: only({ optimize: 'quality' }) });

  it('removes a model whose breaker is open and takes it back once it may be tried again', async () => {
    const { clock, registry, decider } = setup();
    expect(decider.decide(best).selected_model).toBe('premium');
    await fail(registry, 'ai.model.premium');
    const decision = decider.decide(best);
    expect(ids(decision)).toEqual(['value', 'fast', 'budget']);
    expect(decision.routing_reason).toContain('circuit breaker open: premium');
    expect(decider.decide({ ...best, preferred_model: 'premium' }).routing_reason).toContain(
      "preferred model 'premium' not honoured: its circuit breaker is open, chose value instead",
    );
    clock.advance(1000); // half-open: the trial call must be routable
    expect(decider.decide(best).selected_model).toBe('premium');
  });

  it('removes every model of a provider whose breaker is open', async () => {
    const { registry, decider } = setup();
    await fail(registry, 'ai.provider.openai');
    expect(ids(decider.decide(best))).toEqual(['premium', 'budget']);
  });

  it('keeps a model while one of its deployments is usable', async () => {
    const { registry, decider } = setup();
    const fastest = code('medium', { context: only({ optimize: 'latency' }) });
    await fail(registry, 'ai.deployment.fast/us-1');
    expect(decider.decide(fastest).selected_model).toBe('fast');
    await fail(registry, 'ai.deployment.fast/eu-1');
    expect(decider.decide(fastest).selected_model).toBe('budget');
  });
});

describe('NO_ELIGIBLE_MODEL', () => {
  const decider = makeDecider();

  it('lists which constraint removed which models', () => {
    const error = errorOf(() => decider.decide(code('medium', { context: only({ capabilities: ['vision'] }) }), { tenant: 'eu' }));
    expect(error.code).toBe('NO_ELIGIBLE_MODEL');
    expect(error.status).toBe(422);
    expect(error.extensions.excluded).toEqual({ tenant_regions: ['premium', 'value'], capabilities: ['budget', 'fast'] });
    expect(error.detail).toBe(
      "No model for task type 'code' passes the hard constraints for 0 prompt + 1000 expected output tokens: " +
        'tenant_regions removed premium, value; capabilities removed budget, fast.',
    );
  });

  it('lists the constraints in the order they are checked, whatever the catalog order', () => {
    const error = errorOf(() => decider.decide(code('low', { context: only({ max_cost: 0 }) }), { tenant: 'no-google' }));
    expect(Object.entries(error.extensions.excluded as object)).toEqual([
      ['tenant_providers', ['budget']],
      ['max_cost', ['premium', 'value', 'fast']],
    ]);
  });

  it('names the largest context window when windows were too small', () => {
    const context = promptOf(3500);
    const tokens = tokenizer.countPromptTokens(context);
    const error = errorOf(() => decider.decide(code('low', { context }), { onlyModels: ['budget'] }));
    expect(error.extensions).toMatchObject({
      task_type: 'code',
      prompt_tokens: tokens,
      expected_output_tokens: 1000,
      largest_context_window: 100_000,
      excluded: { routing_policy: ['premium', 'value', 'fast'], context_window: ['budget'] },
    });
    expect(error.detail).toContain('context_window removed budget (largest context window: 100000 tokens)');
  });

  it.each([
    [{ max_cost: 0 }, { max_cost: ['premium', 'value', 'budget', 'fast'] }],
    [{ max_latency_ms: 0 }, { max_latency_ms: ['premium', 'value', 'budget', 'fast'] }],
  ])('is raised when %j removes everything', (limits, excluded) => {
    expect(errorOf(() => decider.decide(code('low', { context: only(limits) }))).extensions.excluded).toEqual(excluded);
  });
});

describe('INVALID_ROUTE_CONTEXT (in-process callers)', () => {
  it.each([
    [{ max_cost: -0.01 }, 'context.max_cost'],
    [{ max_cost: '1' }, 'context.max_cost'],
    [{ max_latency_ms: 1.5 }, 'context.max_latency_ms'],
    [{ max_latency_ms: -1 }, 'context.max_latency_ms'],
    [{ optimize: 'speed' }, 'context.optimize'],
    [{ capabilities: 'vision' }, 'context.capabilities'],
    [{ capabilities: ['telepathy'] }, 'context.capabilities'],
  ])('rejects %j naming %s', (context, field) => {
    const error = errorOf(() => makeDecider().decide(code('low', { context: only(context) })));
    expect(error).toMatchObject({ code: 'INVALID_ROUTE_CONTEXT', status: 400, extensions: { field } });
    expect(error.detail.startsWith(field)).toBe(true);
  });
});
