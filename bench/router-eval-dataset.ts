// node bench/router-eval-dataset.ts [seed] > test/fixtures/router-eval/synthetic.jsonl
// Writes the synthetic router evaluation dataset: 10 items per task type of the default catalog,
// complexities in turn. Each item draws one difficulty d, uniform in [0, 1); a model serving the task
// type is correct when d < its catalog quality for (task type, complexity). So each model succeeds at
// its catalog rate, and, as with real hard prompts, an item a better model fails the weaker ones fail
// too. Same seed, same file. See docs/router-evaluation.md.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { loadModelCatalog } from '../src/autonomous/ai-router/catalog.ts';
import type { Complexity } from '../src/autonomous/ai-router/types.ts';

const ITEMS_PER_TASK = 10;
const COMPLEXITIES: readonly Complexity[] = ['low', 'medium', 'high'];
const SUBJECTS = [
  'an invoice',
  'a support ticket',
  'a release note',
  'a sensor log',
  'a contract clause',
  'a bug report',
  'a survey answer',
];
const PROMPTS: Readonly<Record<string, (subject: string, complexity: Complexity) => string>> = {
  chat: (s, c) => `Answer a customer who asks about ${s}; the question is ${c === 'high' ? 'ambiguous and multi-part' : 'direct'}.`,
  code: (s, c) =>
    `Write a TypeScript function that parses ${s} into a typed record${c === 'high' ? ', streaming, with error recovery and tests' : ''}.`,
  summarization: (s, c) =>
    `Summarise ${s} in ${c === 'low' ? 'one sentence' : c === 'medium' ? 'three bullet points' : 'a structured brief'}.`,
  classification: (s, c) => `Classify ${s} as urgent, normal or spam${c === 'high' ? ', explaining borderline cases' : ''}.`,
  extraction: (s, c) => `Extract the dates, amounts and parties from ${s}${c === 'high' ? ', resolving relative dates' : ''} as JSON.`,
  reasoning: (s, c) =>
    `Given ${s}, work out ${c === 'low' ? 'which single step failed' : c === 'medium' ? 'the likely root cause' : 'a proof that the proposed fix is complete'}.`,
};

/** mulberry32: a tiny seeded PRNG, so the file is reproducible without a dependency. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const seed = Number(process.argv[2] ?? 3);
const random = createRandom(seed);
const root = new URL('..', import.meta.url).pathname;
const catalog = loadModelCatalog(parseYaml(readFileSync(`${root}config/models.yaml`, 'utf8')));
const expected = (
  parseYaml(readFileSync(`${root}config/default.yaml`, 'utf8')) as { ai: { expected_output_tokens: Record<string, number> } }
).ai.expected_output_tokens;

const lines: string[] = [];
for (const taskType of catalog.taskTypes) {
  const template = PROMPTS[taskType];
  if (template === undefined) throw new Error(`no prompt template for task type '${taskType}'`);
  for (let i = 0; i < ITEMS_PER_TASK; i++) {
    const complexity = COMPLEXITIES[i % COMPLEXITIES.length] as Complexity;
    const subject = SUBJECTS[Math.floor(random() * SUBJECTS.length)] as string;
    const base = expected[taskType] ?? expected.default ?? 500;
    const difficulty = random();
    const outcomes: Record<string, { correct: boolean }> = {};
    for (const spec of catalog.modelsForTask(taskType)) {
      const quality = spec.quality[taskType];
      if (quality !== undefined) outcomes[spec.model] = { correct: difficulty < quality[complexity] };
    }
    lines.push(
      JSON.stringify({
        id: `${taskType}-${String(i + 1).padStart(2, '0')}`,
        prompt: template(subject, complexity),
        task_type: taskType,
        complexity,
        output_tokens: Math.round(base * (0.5 + random())),
        outcomes,
      }),
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
