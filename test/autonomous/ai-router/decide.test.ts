import { describe, expect, it } from 'vitest';
import { loadModelCatalog } from '../../../src/autonomous/ai-router/catalog.ts';
import { createRouteDecider, type RouteDeciderOptions } from '../../../src/autonomous/ai-router/decide.ts';
import { createTokenizer } from '../../../src/autonomous/ai-router/tokenizer.ts';
import type { RouteRequest } from '../../../src/autonomous/ai-router/types.ts';
import { type BlocksError, isBlocksError } from '../../../src/platform/errors.ts';

const tokenizer = createTokenizer();
tokenizer.warmUp();

const q = (low: number, medium: number, high: number) => ({ low, medium, high });

/*
 * code:       big (best, dear), mid (0.01 below big at medium, cheap), small (cheapest, tiny window)
 * chat:       small is best but its window is 1000 tokens; big is the fallback
 * extraction: mid at high has a 4-decimal quality
 * summarization: a single model whose window the expected output alone nearly fills
 */
const catalog = loadModelCatalog([
  {
    provider: 'openai',
    model: 'big',
    task_types: ['code', 'chat'],
    context_window: 100_000,
    input_price_per_mtok: 10,
    output_price_per_mtok: 30,
    quality: { code: q(0.95, 0.9, 0.8), chat: q(0.9, 0.85, 0.8) },
  },
  {
    provider: 'anthropic',
    model: 'mid',
    task_types: ['code', 'extraction'],
    context_window: 100_000,
    input_price_per_mtok: 1,
    output_price_per_mtok: 2,
    quality: { code: q(0.94, 0.89, 0.7), extraction: q(0.84, 0.84, 0.8765) },
  },
  {
    provider: 'google',
    model: 'small',
    task_types: ['code', 'chat', 'extraction'],
    context_window: 1000,
    input_price_per_mtok: 0.123,
    output_price_per_mtok: 0.2,
    quality: { code: q(0.9, 0.8, 0.6), chat: q(0.99, 0.95, 0.9), extraction: q(0.86, 0.5, 0.5) },
  },
  {
    provider: 'google',
    model: 'tiny',
    task_types: ['summarization'],
    context_window: 50,
    input_price_per_mtok: 1,
    output_price_per_mtok: 1,
    quality: { summarization: q(0.7, 0.6, 0.5) },
  },
]);

const expectedOutputTokens = { default: 100, chat: 20, summarization: 40 };
const decider = createRouteDecider({ catalog, tokenizer, expectedOutputTokens });

const prices = {
  big: { input: 10, output: 30 },
  mid: { input: 1, output: 2 },
  small: { input: 0.123, output: 0.2 },
  tiny: { input: 1, output: 1 },
};

/** A prompt of about `tokens` tokens ("word" repeated). */
const promptOf = (tokens: number) => ({ prompt: ' word'.repeat(tokens) });

function errorOf(request: RouteRequest): BlocksError {
  try {
    decider.decide(request);
  } catch (error) {
    if (isBlocksError(error)) return error;
    throw error;
  }
  throw new Error('decide did not throw');
}

describe('decide: choosing by quality and cost', () => {
  it('chooses the best quality for the complexity and names the runner-up', () => {
    const decision = decider.decide({ task_type: 'code', complexity: 'high', context: { prompt: 'hello world' } });
    expect(decision.selected_model).toBe('big');
    expect(decision.confidence).toBe(0.8);
    expect(decision.routing_reason).toMatch(/^big: best quality for code\/high \(0\.8\) at \$/);
    expect(decision.routing_reason).toContain('runner-up mid (0.7 at $');
  });

  it('chooses a cheaper model whose quality is within the margin of the best', () => {
    const decision = decider.decide({ task_type: 'code', complexity: 'medium', context: { prompt: 'hello world' } });
    expect(decision.selected_model).toBe('mid');
    expect(decision.confidence).toBe(0.89);
    expect(decision.routing_reason).toContain('mid: cheapest model within 0.02 of the best quality for code/medium (0.89 vs 0.9 for big)');
    expect(decision.routing_reason).toContain('runner-up big (0.9 at $');
  });

  it('chooses the best when the margin is zero', () => {
    const strict = createRouteDecider({ catalog, tokenizer, expectedOutputTokens, qualityMargin: 0 });
    expect(strict.decide({ task_type: 'code', complexity: 'medium' }).selected_model).toBe('big');
  });

  it('does not choose a cheaper model further below the best than the margin', () => {
    // code/low: big 0.95, mid 0.94, small 0.90: small is cheapest but 0.05 below.
    expect(decider.decide({ task_type: 'code', complexity: 'low' }).selected_model).toBe('mid');
  });

  it('treats a difference of exactly the margin as within it', () => {
    // 0.86 - 0.84 is 0.020000000000000018 in floating point; the cheaper 0.84 must still count.
    const close = loadModelCatalog(
      [
        { model: 'best', quality: 0.86, price: 5 },
        { model: 'close', quality: 0.84, price: 0.01 },
      ].map(({ model, quality, price }) => ({
        provider: 'p',
        model,
        task_types: ['extraction'],
        context_window: 10_000,
        input_price_per_mtok: price,
        output_price_per_mtok: price,
        quality: { extraction: q(quality, quality, quality) },
      })),
    );
    const d = createRouteDecider({ catalog: close, tokenizer, expectedOutputTokens: { default: 10 } });
    expect(d.decide({ task_type: 'extraction', complexity: 'low' }).selected_model).toBe('close');
  });

  it('breaks equal quality by lower cost', () => {
    const equal = loadModelCatalog(
      ['dear', 'cheap', 'middling'].map((model, i) => ({
        provider: 'p',
        model,
        task_types: ['chat'],
        context_window: 10_000,
        input_price_per_mtok: [5, 1, 3][i],
        output_price_per_mtok: [5, 1, 3][i],
        quality: { chat: q(0.9, 0.9, 0.9) },
      })),
    );
    const d = createRouteDecider({ catalog: equal, tokenizer, expectedOutputTokens: { default: 10 }, qualityMargin: 0 });
    const decision = d.decide({ task_type: 'chat', complexity: 'high' });
    expect(decision.selected_model).toBe('cheap');
    expect(decision.routing_reason).toContain('runner-up middling');
  });

  it('says so when only one model is eligible', () => {
    const decision = decider.decide({ task_type: 'summarization', complexity: 'low', context: { prompt: 'hi' } });
    expect(decision.selected_model).toBe('tiny');
    expect(decision.routing_reason).toContain('no other eligible model');
  });

  it('rounds confidence to 3 decimals', () => {
    // extraction/high: mid 0.8765 vs small 0.5.
    expect(decider.decide({ task_type: 'extraction', complexity: 'high' }).confidence).toBe(0.877);
  });
});

describe('decide: context window', () => {
  it('excludes a model whose window cannot hold the prompt plus the expected output, and says so', () => {
    expect(decider.decide({ task_type: 'chat', complexity: 'low', context: { prompt: 'hello world' } }).selected_model).toBe('small');
    const huge = promptOf(2000);
    const tokens = tokenizer.countPromptTokens(huge);
    expect(tokens).toBeGreaterThan(1000);
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', context: huge });
    expect(decision.selected_model).toBe('big');
    expect(decision.routing_reason).toContain(`context window too small for ${tokens} prompt + 20 expected output tokens: small`);
  });

  it('counts the expected output against the window', () => {
    // chat expects 20 output tokens: a prompt of 981..1000 tokens fits small's 1000-token window alone, not with the output.
    const prompt = promptOf(990);
    const tokens = tokenizer.countPromptTokens(prompt);
    expect(tokens).toBeLessThanOrEqual(1000);
    expect(tokens + 20).toBeGreaterThan(1000);
    expect(decider.decide({ task_type: 'chat', complexity: 'low', context: prompt }).selected_model).toBe('big');
    const fits = promptOf(980);
    expect(tokenizer.countPromptTokens(fits) + 20).toBeLessThanOrEqual(1000);
    expect(decider.decide({ task_type: 'chat', complexity: 'low', context: fits }).selected_model).toBe('small');
  });

  it('fails with NO_ELIGIBLE_MODEL naming the task type, the tokens and the largest window', () => {
    const context = promptOf(30);
    const tokens = tokenizer.countPromptTokens(context);
    const error = errorOf({ task_type: 'summarization', complexity: 'low', context, preferred_model: 'tiny' });
    expect(error.code).toBe('NO_ELIGIBLE_MODEL');
    expect(error.status).toBe(422);
    expect(error.detail).toContain("task type 'summarization'");
    expect(error.detail).toContain(`${tokens} prompt + 40 expected output tokens`);
    expect(error.detail).toContain('largest context window: 50 tokens');
    expect(error.extensions).toMatchObject({ task_type: 'summarization', prompt_tokens: tokens, largest_context_window: 50 });
  });
});

describe('decide: preferred model', () => {
  it('honours an eligible preference over the rule and names what the rule would choose', () => {
    const decision = decider.decide({ task_type: 'code', complexity: 'high', preferred_model: 'small' });
    expect(decision.selected_model).toBe('small');
    expect(decision.confidence).toBe(0.6);
    expect(decision.routing_reason).toMatch(/^small: preferred model honoured \(0\.6 at \$[0-9.]+ for code\/high\)/);
    expect(decision.routing_reason).toContain('the rule would choose big (0.8');
  });

  it('says when the preference is also the rule’s choice', () => {
    const decision = decider.decide({ task_type: 'code', complexity: 'high', preferred_model: 'big' });
    expect(decision.selected_model).toBe('big');
    expect(decision.routing_reason).toContain("big: preferred model, also the rule's choice");
    expect(decision.routing_reason).toContain('runner-up mid');
  });

  it('does not honour a preference whose context window is too small, and says why', () => {
    const context = promptOf(2000);
    const tokens = tokenizer.countPromptTokens(context);
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', preferred_model: 'small', context });
    expect(decision.selected_model).toBe('big');
    expect(decision.routing_reason).toContain(
      `preferred model 'small' not honoured: its context window (1000 tokens) is too small for ${tokens} prompt + 20 expected output tokens`,
    );
  });

  it('does not honour a preference that does not serve the task type, and says why', () => {
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', preferred_model: 'mid' });
    expect(decision.selected_model).toBe('small');
    expect(decision.routing_reason).toContain("preferred model 'mid' not honoured: it does not serve task type 'chat'");
  });

  it('ignores an unknown preferred model with a reason, not an error', () => {
    const decision = decider.decide({ task_type: 'code', complexity: 'high', preferred_model: 'gpt-9' });
    expect(decision.selected_model).toBe('big');
    expect(decision.routing_reason).toContain("preferred model 'gpt-9' not honoured: unknown model");
  });
});

describe('decide: errors', () => {
  it('fails with UNKNOWN_TASK_TYPE naming the known task types', () => {
    const error = errorOf({ task_type: 'vision', complexity: 'low' });
    expect(error.code).toBe('UNKNOWN_TASK_TYPE');
    expect(error.status).toBe(422);
    expect(error.detail).toBe("Unknown task type 'vision'; known task types: chat, code, extraction, summarization.");
    expect(error.extensions.known_task_types).toEqual(['chat', 'code', 'extraction', 'summarization']);
  });
});

describe('decide: estimated cost', () => {
  const costOf = (model: keyof typeof prices, promptTokens: number, outputTokens: number) =>
    (promptTokens * prices[model].input + outputTokens * prices[model].output) / 1e6;

  it('is prompt tokens times input price plus expected output times output price, per million', () => {
    // "hello world" is 2 tokens; code expects the default 100 output tokens; mid costs 1 / 2 per Mtok.
    const decision = decider.decide({ task_type: 'code', complexity: 'medium', context: { prompt: 'hello world' } });
    expect(decision.selected_model).toBe('mid');
    expect(decision.estimated_cost).toBe(0.000202);
  });

  it('uses the expected output of the task type', () => {
    // chat expects 20 output tokens; small costs 0.123 / 0.2: (2 × 0.123 + 20 × 0.2) / 1e6 = 4.246e-6.
    const decision = decider.decide({ task_type: 'chat', complexity: 'low', context: { prompt: 'hello world' } });
    expect(decision.selected_model).toBe('small');
    expect(decision.estimated_cost).toBe(0.00000425);
    expect(decision.estimated_cost).toBe(Math.round(costOf('small', 2, 20) * 1e8) / 1e8);
  });

  it('counts the prompt-bearing text of the context', () => {
    const context = { messages: [{ role: 'user', content: 'Hello, world!' }], input: 'hello world', other: 'x'.repeat(500) };
    const decision = decider.decide({ task_type: 'code', complexity: 'high', context });
    expect(decision.selected_model).toBe('big');
    expect(decision.estimated_cost).toBe(costOf('big', 4 + 2, 100));
  });

  it('rises with the prompt, by exactly the extra tokens at the input price', () => {
    const short = promptOf(100);
    const long = promptOf(1000);
    const shortTokens = tokenizer.countPromptTokens(short);
    const longTokens = tokenizer.countPromptTokens(long);
    expect(longTokens).toBeGreaterThan(shortTokens * 9);
    const a = decider.decide({ task_type: 'code', complexity: 'high', context: short });
    const b = decider.decide({ task_type: 'code', complexity: 'high', context: long });
    expect([a.selected_model, b.selected_model]).toEqual(['big', 'big']);
    expect(a.estimated_cost).toBe(Math.round(costOf('big', shortTokens, 100) * 1e8) / 1e8);
    expect(b.estimated_cost).toBe(Math.round(costOf('big', longTokens, 100) * 1e8) / 1e8);
    expect(b.estimated_cost - a.estimated_cost).toBeCloseTo(((longTokens - shortTokens) * 10) / 1e6, 10);
  });

  it('is zero prompt cost without a context', () => {
    expect(decider.decide({ task_type: 'code', complexity: 'high' }).estimated_cost).toBe((100 * 30) / 1e6);
  });
});

describe('createRouteDecider: settings', () => {
  const build = (overrides: Partial<RouteDeciderOptions>) => () =>
    createRouteDecider({ catalog, tokenizer, expectedOutputTokens, ...overrides });

  it.each([
    [{ expectedOutputTokens: { chat: 10 } }, 'expected_output_tokens.default: missing'],
    [{ expectedOutputTokens: { default: 10, vision: 5 } }, "expected_output_tokens.vision: no model serves task type 'vision'"],
    [{ expectedOutputTokens: { default: -1 } }, 'expected_output_tokens.default: must be a non-negative integer (got -1)'],
    [{ expectedOutputTokens: { default: 10, code: 2.5 } }, 'expected_output_tokens.code: must be a non-negative integer (got 2.5)'],
    [{ qualityMargin: 1.5 }, 'quality_margin: must be a number from 0 to 1 (got 1.5)'],
  ])('rejects %j', (overrides, detail) => {
    expect(build(overrides)).toThrow(expect.objectContaining({ code: 'INVALID_ROUTER_CONFIG', detail }));
  });
});
