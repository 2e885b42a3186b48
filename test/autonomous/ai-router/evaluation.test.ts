import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EvalDatasetError,
  evaluateRouter,
  parseEvalDataset,
  type EvalDecide,
  type EvalItem,
  type EvalNote,
  type RouterEvaluation,
} from '../../../src/autonomous/ai-router/evaluation.ts';

const root = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);
const jsonl = (...lines: unknown[]): string => lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n');
const known = (model: string): boolean => ['strong', 'mid', 'weak', 'other'].includes(model);
const routeTo =
  (choices: Record<string, string>): EvalDecide =>
  (request) => {
    const choice = choices[String(request.context?.prompt)];
    if (choice === undefined) throw new Error(`no choice for ${String(request.context?.prompt)}`);
    return { selected_model: choice };
  };

/*
 * a, b: chat; c, d: code. The stub routes a and b to mid, c to weak, d to 'other' (no label).
 * strong has the best mean quality (0.95), so it is the default strong model.
 */
const tiny = jsonl(
  {
    id: 'a',
    prompt: 'a',
    task_type: 'chat',
    complexity: 'low',
    outcomes: { strong: { correct: true, cost: 1 }, mid: { correct: true, cost: 0.2 }, weak: { correct: false, cost: 0.05 } },
  },
  {
    id: 'b',
    prompt: 'b',
    task_type: 'chat',
    complexity: 'high',
    outcomes: { strong: { correct: true, cost: 1 }, mid: { correct: false, cost: 0.3 }, weak: { correct: false, cost: 0.1 } },
  },
  {
    id: 'c',
    prompt: 'c',
    task_type: 'code',
    complexity: 'medium',
    outcomes: { strong: { correct: 0.8, cost: 2 }, mid: { correct: 0.9, cost: 0.5 }, weak: { correct: 0.5, cost: 0.1 } },
  },
  {
    id: 'd',
    prompt: 'd',
    task_type: 'code',
    complexity: 'high',
    outcomes: { strong: { correct: true, cost: 1 }, mid: { correct: true, cost: 0.4 }, weak: { correct: false, cost: 0.1 } },
  },
);
const tinyChoices = { a: 'mid', b: 'mid', c: 'weak', d: 'other' };

describe('evaluateRouter', () => {
  it('scores the router against the strong model, the oracle and the cheapest model', async () => {
    const { items } = parseEvalDataset(tiny, known);
    const r = await evaluateRouter({ items, decide: routeTo(tinyChoices) });

    expect(r.strong_model).toBe('strong');
    expect(r.items).toBe(3);
    // router: a mid (1, $0.2), b mid (0, $0.3), c weak (0.5, $0.1)
    expect(r.router.quality).toBeCloseTo(0.5, 12);
    expect(r.router.cost).toBeCloseTo(0.6, 12);
    expect(r.strong.quality).toBeCloseTo(2.8 / 3, 12);
    expect(r.strong.cost).toBeCloseTo(4, 12);
    // oracle: a mid (cheapest correct), b strong (only correct), c mid (best grade)
    expect(r.oracle.quality).toBeCloseTo(2.9 / 3, 12);
    expect(r.oracle.cost).toBeCloseTo(1.7, 12);
    expect(r.cheapest.quality).toBeCloseTo(0.5 / 3, 12);
    expect(r.cheapest.cost).toBeCloseTo(0.25, 12);
    expect(r.quality_retained).toBeCloseTo(1.5 / 2.8, 12);
    expect(r.cost_share).toBeCloseTo(0.15, 12);
    expect(r.cost_saved).toBeCloseTo(3.4, 12);
    expect(r.gap_recovered).toBeCloseTo(1 / 2.3, 12);

    expect(r.routing).toEqual([
      { model: 'mid', count: 2, share: 0.5 },
      { model: 'other', count: 1, share: 0.25 },
      { model: 'weak', count: 1, share: 0.25 },
    ]);
    expect(Object.keys(r.by_task_type)).toEqual(['chat', 'code']);
    const chat = r.by_task_type.chat!;
    expect(chat.items).toBe(2);
    expect(chat.router.quality).toBeCloseTo(0.5, 12);
    expect(chat.router.cost).toBeCloseTo(0.5, 12);
    expect(chat.cost_share).toBeCloseTo(0.25, 12);
    const code = r.by_task_type.code!;
    expect(code.items).toBe(1);
    expect(code.quality_retained).toBeCloseTo(0.5 / 0.8, 12);
    expect(code.cost_saved).toBeCloseTo(1.9, 12);
  });

  it('reports an item whose chosen model has no label instead of dropping it', async () => {
    const { items } = parseEvalDataset(tiny, known);
    const r = await evaluateRouter({ items, decide: routeTo(tinyChoices) });
    expect(r.unlabelled_choice).toEqual([{ line: 4, id: 'd', model: 'other', reason: 'chosen model has no label' }]);
    expect(r.strong_unlabelled).toEqual([]);
    expect(r.router_errors).toEqual([]);
  });

  it('uses the strong model it is given, and reports items that do not label it', async () => {
    const { items } = parseEvalDataset(tiny, known);
    const dropped = items.map((item): EvalItem => (item.id === 'a' ? { ...item, outcomes: { mid: item.outcomes.mid! } } : item));
    const r = await evaluateRouter({ items: dropped, decide: routeTo(tinyChoices), strongModel: 'mid' });
    expect(r.strong_model).toBe('mid');
    expect(r.strong_unlabelled).toEqual([]);
    const s = await evaluateRouter({ items: dropped, decide: routeTo({ ...tinyChoices, a: 'mid' }), strongModel: 'weak' });
    expect(s.strong_unlabelled).toEqual([{ line: 1, id: 'a', model: 'weak', reason: 'strong model has no label' }]);
    expect(s.items).toBe(2);
    await expect(evaluateRouter({ items, decide: routeTo(tinyChoices), strongModel: 'nobody' })).rejects.toThrow(/'nobody' has no label/);
  });

  it('prefers as default strong model one labelled on every item over a better one labelled on a few', async () => {
    const items = parseEvalDataset(
      jsonl(
        {
          id: 'x',
          prompt: 'x',
          task_type: 't',
          complexity: 'low',
          outcomes: { narrow: { correct: true, cost: 1 }, wide: { correct: true, cost: 1 } },
        },
        { id: 'y', prompt: 'y', task_type: 't', complexity: 'high', outcomes: { wide: { correct: 0.5, cost: 1 } } },
      ),
      () => true,
    ).items;
    const r = await evaluateRouter({ items, decide: () => ({ selected_model: 'wide' }) });
    expect(r.strong_model).toBe('wide');
  });

  it('reports items the router refuses and awaits an async decide', async () => {
    const { items } = parseEvalDataset(tiny, known);
    const r = await evaluateRouter({
      items,
      decide: async (request) => {
        if (request.task_type === 'code') throw new Error('no model serves code');
        return { selected_model: 'strong' };
      },
    });
    expect(r.router_errors.map((n) => [n.line, n.id, n.reason])).toEqual([
      [3, 'c', 'no model serves code'],
      [4, 'd', 'no model serves code'],
    ]);
    expect(r.items).toBe(2);
    expect(r.quality_retained).toBe(1);
    expect(r.routing).toEqual([{ model: 'strong', count: 2, share: 1 }]);
  });

  it('estimates missing costs with the estimator it is given, and refuses without one', async () => {
    const items = parseEvalDataset(
      jsonl({
        id: 'e',
        prompt: 'e',
        task_type: 'chat',
        complexity: 'low',
        output_tokens: 7,
        outcomes: { strong: { correct: true }, weak: { correct: true, cost: 0.5 } },
      }),
      known,
    ).items;
    const seen: [string, number | undefined][] = [];
    const r = await evaluateRouter({
      items,
      decide: () => ({ selected_model: 'weak' }),
      strongModel: 'strong',
      estimateCost: (model, item) => {
        seen.push([model, item.output_tokens]);
        return 2;
      },
    });
    expect(seen).toContainEqual(['strong', 7]);
    expect(r.strong.cost).toBe(2);
    expect(r.cost_share).toBe(0.25);
    await expect(evaluateRouter({ items, decide: () => ({ selected_model: 'weak' }) })).rejects.toThrow(
      /line 1: outcomes\.strong\.cost is missing/,
    );
  });

  it('refuses an empty dataset', async () => {
    await expect(evaluateRouter({ items: [], decide: () => ({ selected_model: 'x' }) })).rejects.toThrow(/no item/);
  });
});

describe('parseEvalDataset', () => {
  const good = { id: 'ok', prompt: 'p', task_type: 'chat', complexity: 'low', outcomes: { strong: { correct: true } } };
  const errorOf = (text: string): EvalDatasetError => {
    try {
      parseEvalDataset(text, known);
    } catch (error) {
      if (error instanceof EvalDatasetError) return error;
      throw error;
    }
    throw new Error('expected an EvalDatasetError');
  };

  it.each([
    [jsonl(good, '{not json'), 2, '(line)', /not valid JSON/],
    [jsonl(good, '', '[1]'), 3, '(line)', /must be a JSON object/],
    [jsonl({ ...good, id: '' }), 1, 'id', /non-empty string \(got ""\)/],
    [jsonl(good, good), 2, 'id', /duplicate id 'ok'/],
    [jsonl({ ...good, prompt: undefined }), 1, 'prompt', /got nothing/],
    [jsonl({ ...good, task_type: 3 }), 1, 'task_type', /got 3/],
    [jsonl(good, { ...good, id: 'x', complexity: 'hard' }), 2, 'complexity', /"low", "medium" or "high" \(got "hard"\)/],
    [jsonl({ ...good, output_tokens: 1.5 }), 1, 'output_tokens', /non-negative integer/],
    [jsonl({ ...good, outcomes: {} }), 1, 'outcomes', /non-empty object/],
    [jsonl({ ...good, outcomes: { strong: true } }), 1, 'outcomes.strong', /must be an object/],
    [jsonl({ ...good, outcomes: { strong: { correct: 'yes' } } }), 1, 'outcomes.strong.correct', /boolean or a number from 0 to 1/],
    [jsonl({ ...good, outcomes: { strong: { correct: 1.2 } } }), 1, 'outcomes.strong.correct', /got 1.2/],
    [jsonl({ ...good, outcomes: { strong: { correct: true, cost: -1 } } }), 1, 'outcomes.strong.cost', /non-negative number of USD/],
  ])('rejects a bad line with its number and field (%#)', (text, line, field, problem) => {
    const error = errorOf(text);
    expect(error.line).toBe(line);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(new RegExp(`^line ${line}: ${field.replace(/[.()]/g, '\\$&')}: `));
    expect(error.message).toMatch(problem);
  });

  it('reads booleans as 1/0, keeps graded quality and costs, ignores blank lines and extra fields', () => {
    const parsed = parseEvalDataset(
      `\n${jsonl({ ...good, source: 'hand', outcomes: { strong: { correct: false, cost: 0.25 }, mid: { correct: 0.7 } } })}\n\n`,
      known,
    );
    expect(parsed.items).toEqual([
      {
        line: 2,
        id: 'ok',
        prompt: 'p',
        task_type: 'chat',
        complexity: 'low',
        outcomes: { strong: { quality: 0, cost: 0.25 }, mid: { quality: 0.7 } },
      },
    ]);
  });

  it('drops and reports outcomes of unknown models, and skips a line left with none', () => {
    const parsed = parseEvalDataset(
      jsonl(
        { ...good, outcomes: { strong: { correct: true }, 'gpt-9': { correct: true } } },
        { ...good, id: 'only-unknown', outcomes: { 'gpt-9': { correct: true }, 'llama-x': { correct: false } } },
      ),
      known,
    );
    expect(parsed.items.map((item) => [item.id, Object.keys(item.outcomes)])).toEqual([['ok', ['strong']]]);
    expect(parsed.unknownModels).toEqual([
      { line: 1, id: 'ok', model: 'gpt-9', reason: 'model not in the catalog' },
      { line: 2, id: 'only-unknown', model: 'gpt-9', reason: 'model not in the catalog' },
      { line: 2, id: 'only-unknown', model: 'llama-x', reason: 'model not in the catalog' },
    ]);
    expect(parsed.skippedLines).toEqual([{ line: 2, id: 'only-unknown', reason: 'no outcome of a model in the catalog' }]);
  });
});

describe('npm run eval:router (the CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'router-eval-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => run(process.execPath, ['bench/eval-router.ts', ...args], { cwd: root });

  it('prints the figures of the synthetic dataset as JSON', async () => {
    const { stdout } = await cli('test/fixtures/router-eval/synthetic.jsonl', '--json');
    const report = JSON.parse(stdout) as RouterEvaluation & { dataset: { items: number; unknown_models: EvalNote[] } };
    expect(report.dataset.items).toBe(60);
    expect(report.dataset.unknown_models).toEqual([]);
    expect(report.strong_model).toEqual(expect.any(String));
    expect(report.items + report.unlabelled_choice.length + report.strong_unlabelled.length + report.router_errors.length).toBe(60);
    const shares = [
      report.router.quality,
      report.strong.quality,
      report.oracle.quality,
      report.cheapest.quality,
      report.cost_share,
      ...report.routing.map((m) => m.share),
      ...Object.values(report.by_task_type).flatMap((c) => [c.router.quality, c.strong.quality, c.oracle.quality, c.cost_share]),
    ];
    for (const share of shares) {
      expect(share).toBeGreaterThanOrEqual(0);
      expect(share).toBeLessThanOrEqual(1);
    }
    expect(report.quality_retained).toBeGreaterThan(0);
    expect(report.router.cost).toBeGreaterThan(0);
    expect(report.cost_saved).toBeCloseTo(report.strong.cost - report.router.cost, 12);
    expect(report.routing.reduce((sum, m) => sum + m.count, 0)).toBe(60 - report.router_errors.length);
    expect(Object.keys(report.by_task_type).sort()).toEqual(['chat', 'classification', 'code', 'extraction', 'reasoning', 'summarization']);
  });

  it('prints a table, and reports unknown models and unlabelled choices', async () => {
    const file = join(dir, 'mixed.jsonl');
    writeFileSync(
      file,
      jsonl(
        // The router picks gpt-4o-mini for low chat; only gpt-4o is labelled: an unlabelled choice.
        { id: 'u', prompt: 'Hi', task_type: 'chat', complexity: 'low', outcomes: { 'gpt-4o': { correct: true, cost: 0.01 } } },
        {
          id: 'k',
          prompt: 'Hello',
          task_type: 'chat',
          complexity: 'low',
          outcomes: { 'gpt-4o-mini': { correct: true }, 'gpt-4o': { correct: true } },
        },
        { id: 'z', prompt: 'Hey', task_type: 'chat', complexity: 'low', outcomes: { 'made-up-model': { correct: true } } },
      ),
    );
    const { stdout } = await cli(file);
    expect(stdout).toMatch(/strong model: gpt-4o; scored items: 1/);
    expect(stdout).toMatch(/unlabelled choice \(not scored\): 1\n {2}line 1 \(u\) gpt-4o-mini: chosen model has no label/);
    expect(stdout).toMatch(/outcomes of unknown models \(dropped\): 1\n {2}line 3 \(z\) made-up-model/);
    expect(stdout).toMatch(/lines skipped: 1\n {2}line 3 \(z\)/);
    expect(stdout).toMatch(/^router\s+1\.000/m);
  });

  it('fails with the line and field of a bad line, and no stack trace', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(
      file,
      jsonl({ id: 'a', prompt: 'p', task_type: 'chat', complexity: 'low', outcomes: { 'gpt-4o': { correct: true } } }, '{"id": "b"}'),
    );
    const failure = await cli(file).then(
      () => undefined,
      (error: unknown) => error as { code: number; stderr: string },
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr.trim()).toBe('eval:router: line 2: prompt: must be a non-empty string (got nothing)');
  });
});
