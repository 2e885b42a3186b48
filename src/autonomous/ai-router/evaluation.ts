import type { Complexity, RouteRequest } from './types.ts';

/** One model's labelled outcome on one dataset item. */
export interface EvalOutcome {
  /** 0..1: a boolean label `correct: true/false` reads as 1/0, a number is a graded quality. */
  readonly quality: number;
  /** USD the model spent on the item, when the dataset says; otherwise the evaluator estimates it. */
  readonly cost?: number;
}

/** One line of a router evaluation dataset (format: docs/router-evaluation.md). */
export interface EvalItem {
  /** 1-based line in the file, for reports. */
  readonly line: number;
  readonly id: string;
  readonly prompt: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  /** Completion length to price when an outcome has no `cost`. */
  readonly output_tokens?: number;
  /** Outcomes of models the catalog knows; at least one. */
  readonly outcomes: Readonly<Record<string, EvalOutcome>>;
}

/** Where a line or an outcome was set aside without failing the run. */
export interface EvalNote {
  readonly line: number;
  readonly id: string;
  readonly model?: string;
  readonly reason: string;
}

export interface ParsedEvalDataset {
  readonly items: readonly EvalItem[];
  /** Outcomes dropped because the catalog does not know their model. */
  readonly unknownModels: readonly EvalNote[];
  /** Lines left with no outcome of a known model. */
  readonly skippedLines: readonly EvalNote[];
}

/** A dataset line that does not fit the format; `line` is 1-based and `field` names the bad field. */
export class EvalDatasetError extends Error {
  override readonly name = 'EvalDatasetError';
  readonly line: number;
  readonly field: string;
  constructor(line: number, field: string, problem: string) {
    super(`line ${line}: ${field}: ${problem}`);
    this.line = line;
    this.field = field;
  }
}

const COMPLEXITIES: readonly string[] = ['low', 'medium', 'high'];
const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const shown = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const isNonNegative = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value) && value >= 0;

/**
 * Parses and validates a JSONL evaluation dataset. Blank lines are ignored; fields other than the
 * documented ones are allowed and ignored, so a dataset may carry its own metadata.
 *
 * Outcomes of models for which `isKnownModel` is false are dropped and listed in `unknownModels`;
 * a line left with none is listed in `skippedLines`. Neither is an error.
 *
 * @throws EvalDatasetError for the first line that is not valid JSON or does not fit the format
 *   (missing or mistyped field, quality outside 0..1, negative cost, duplicate id).
 */
export function parseEvalDataset(text: string, isKnownModel: (model: string) => boolean): ParsedEvalDataset {
  const items: EvalItem[] = [];
  const unknownModels: EvalNote[] = [];
  const skippedLines: EvalNote[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    const item = parseLine(raw, line);
    if (seen.has(item.id)) throw new EvalDatasetError(line, 'id', `duplicate id '${item.id}'`);
    seen.add(item.id);
    const known: Record<string, EvalOutcome> = {};
    for (const [model, outcome] of Object.entries(item.outcomes)) {
      if (isKnownModel(model)) known[model] = outcome;
      else unknownModels.push({ line, id: item.id, model, reason: 'model not in the catalog' });
    }
    if (Object.keys(known).length === 0) skippedLines.push({ line, id: item.id, reason: 'no outcome of a model in the catalog' });
    else items.push({ ...item, outcomes: known });
  });
  return { items, unknownModels, skippedLines };
}

function parseLine(raw: string, line: number): EvalItem {
  const fail = (field: string, problem: string): never => {
    throw new EvalDatasetError(line, field, problem);
  };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return fail('(line)', `not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(value)) return fail('(line)', `must be a JSON object (got ${shown(value)})`);
  const text = (field: string): string => {
    const v = value[field];
    return typeof v === 'string' && v !== '' ? v : fail(field, `must be a non-empty string (got ${shown(v)})`);
  };
  const id = text('id');
  const prompt = text('prompt');
  const taskType = text('task_type');
  const complexity = value.complexity;
  if (typeof complexity !== 'string' || !COMPLEXITIES.includes(complexity)) {
    fail('complexity', `must be "low", "medium" or "high" (got ${shown(complexity)})`);
  }
  const outputTokens = value.output_tokens;
  if (outputTokens !== undefined && !(Number.isSafeInteger(outputTokens) && isNonNegative(outputTokens))) {
    fail('output_tokens', `must be a non-negative integer (got ${shown(outputTokens)})`);
  }
  const rawOutcomes = value.outcomes;
  if (!isRecord(rawOutcomes) || Object.keys(rawOutcomes).length === 0) {
    fail('outcomes', `must be a non-empty object from model id to outcome (got ${shown(rawOutcomes)})`);
  }
  const outcomes: Record<string, EvalOutcome> = {};
  for (const [model, outcome] of Object.entries(rawOutcomes as Record<string, unknown>)) {
    const where = `outcomes.${model}`;
    if (!isRecord(outcome)) return fail(where, `must be an object { correct, cost? } (got ${shown(outcome)})`);
    const correct = outcome.correct;
    let quality: number;
    if (typeof correct === 'boolean') quality = correct ? 1 : 0;
    else if (isNonNegative(correct) && correct <= 1) quality = correct;
    else return fail(`${where}.correct`, `must be a boolean or a number from 0 to 1 (got ${shown(correct)})`);
    const cost = outcome.cost;
    if (cost !== undefined && !isNonNegative(cost)) fail(`${where}.cost`, `must be a non-negative number of USD (got ${shown(cost)})`);
    outcomes[model] = cost === undefined ? { quality } : { quality, cost: cost as number };
  }
  return {
    line,
    id,
    prompt,
    task_type: taskType,
    complexity: complexity as Complexity,
    ...(outputTokens === undefined ? {} : { output_tokens: outputTokens as number }),
    outcomes,
  };
}

/** What the evaluator needs of a router: the model it picks. A learning router's may be async. */
export type EvalDecide = (request: RouteRequest) => { readonly selected_model: string } | Promise<{ readonly selected_model: string }>;

export interface EvaluateRouterOptions {
  readonly items: readonly EvalItem[];
  readonly decide: EvalDecide;
  /** USD of `model` on `item`, for outcomes without a `cost`; required when any outcome lacks one. */
  readonly estimateCost?: (model: string, item: EvalItem) => number;
  /** The "always the strong model" baseline; by default the best on average (see {@link evaluateRouter}). */
  readonly strongModel?: string;
}

/** Mean quality (0..1) and total cost (USD) of one policy over the scored items. */
export interface PolicyFigures {
  readonly quality: number;
  readonly cost: number;
}

/** Router against the baselines over one set of items. Ratios are null when their divisor is 0. */
export interface EvalComparison {
  readonly items: number;
  readonly router: PolicyFigures;
  readonly strong: PolicyFigures;
  readonly oracle: PolicyFigures;
  readonly cheapest: PolicyFigures;
  /** router.quality / strong.quality; above 1 when the router beats the strong model. */
  readonly quality_retained: number | null;
  /** router.cost / strong.cost. */
  readonly cost_share: number | null;
  /** strong.cost - router.cost, USD (negative when the router spent more). */
  readonly cost_saved: number;
  /** (router - cheapest) / (strong - cheapest) quality: RouteLLM's performance gap recovered. */
  readonly gap_recovered: number | null;
}

export interface RouterEvaluation extends EvalComparison {
  readonly strong_model: string;
  /** How often each model was chosen, over every routed item (labelled choice or not), most first. */
  readonly routing: readonly { readonly model: string; readonly count: number; readonly share: number }[];
  readonly by_task_type: Readonly<Record<string, EvalComparison>>;
  /** Items routed to a model without a label for that item: not scored. */
  readonly unlabelled_choice: readonly EvalNote[];
  /** Items without a label for the strong model: not scored, since there is nothing to compare. */
  readonly strong_unlabelled: readonly EvalNote[];
  /** Items the router refused (its error message is the reason): not scored. */
  readonly router_errors: readonly EvalNote[];
}

interface Scored {
  readonly item: EvalItem;
  readonly router: ResolvedOutcome;
  readonly strong: ResolvedOutcome;
  readonly oracle: ResolvedOutcome;
  readonly cheapest: ResolvedOutcome;
}

interface ResolvedOutcome {
  readonly model: string;
  readonly quality: number;
  readonly cost: number;
}

/**
 * Replays `items` through `decide` (one request per item: its task type, complexity and
 * `context: { prompt }`) and scores the choices against three baselines, per item:
 * - strong: the one strong model (by default the highest mean quality over the items that label
 *   it, among the models labelled on every item if there are any; ties to lower mean cost, then id);
 * - oracle: the best-quality labelled model, the cheapest among ties (for correct/incorrect labels,
 *   the cheapest correct model);
 * - cheapest: the cheapest labelled model, the better among ties.
 *
 * Only items whose chosen model and strong model are both labelled are scored; the others are
 * listed in `unlabelled_choice`, `strong_unlabelled` or `router_errors`, never dropped silently.
 *
 * @throws Error when `items` is empty, `strongModel` labels no item, or an outcome has no cost and
 *   no `estimateCost` is given.
 */
export async function evaluateRouter(options: EvaluateRouterOptions): Promise<RouterEvaluation> {
  const { items } = options;
  if (items.length === 0) throw new Error('the dataset has no item to evaluate');
  const resolve = (item: EvalItem, model: string): ResolvedOutcome | undefined => {
    const outcome = item.outcomes[model];
    if (outcome === undefined) return undefined;
    if (outcome.cost !== undefined) return { model, quality: outcome.quality, cost: outcome.cost };
    if (options.estimateCost === undefined)
      throw new Error(`line ${item.line}: outcomes.${model}.cost is missing and no cost estimator was given`);
    return { model, quality: outcome.quality, cost: options.estimateCost(model, item) };
  };
  const strongModel = options.strongModel ?? pickStrongModel(items, resolve);
  if (!items.some((item) => item.outcomes[strongModel] !== undefined))
    throw new Error(`strong model '${strongModel}' has no label in the dataset`);

  const counts = new Map<string, number>();
  const unlabelled: EvalNote[] = [];
  const strongUnlabelled: EvalNote[] = [];
  const routerErrors: EvalNote[] = [];
  const scored: Scored[] = [];
  for (const item of items) {
    let selected: string;
    try {
      ({ selected_model: selected } = await options.decide({
        task_type: item.task_type,
        complexity: item.complexity,
        context: { prompt: item.prompt },
      }));
    } catch (error) {
      routerErrors.push({ line: item.line, id: item.id, reason: error instanceof Error ? error.message : String(error) });
      continue;
    }
    counts.set(selected, (counts.get(selected) ?? 0) + 1);
    const router = resolve(item, selected);
    const strong = resolve(item, strongModel);
    if (router === undefined) unlabelled.push({ line: item.line, id: item.id, model: selected, reason: 'chosen model has no label' });
    else if (strong === undefined)
      strongUnlabelled.push({ line: item.line, id: item.id, model: strongModel, reason: 'strong model has no label' });
    else {
      const all = Object.keys(item.outcomes).map((model) => resolve(item, model) as ResolvedOutcome);
      scored.push({ item, router, strong, oracle: best(all, byQualityThenCost), cheapest: best(all, byCostThenQuality) });
    }
  }

  const routed = items.length - routerErrors.length;
  const byTask = new Map<string, Scored[]>();
  for (const s of scored) byTask.set(s.item.task_type, [...(byTask.get(s.item.task_type) ?? []), s]);
  return {
    strong_model: strongModel,
    ...compare(scored),
    routing: [...counts]
      .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
      .map(([model, count]) => ({ model, count, share: count / routed })),
    by_task_type: Object.fromEntries([...byTask.keys()].sort().map((task) => [task, compare(byTask.get(task) ?? [])])),
    unlabelled_choice: unlabelled,
    strong_unlabelled: strongUnlabelled,
    router_errors: routerErrors,
  };
}

function compare(scored: readonly Scored[]): EvalComparison {
  const figures = (pick: (s: Scored) => ResolvedOutcome): PolicyFigures => {
    let quality = 0;
    let cost = 0;
    for (const s of scored) {
      quality += pick(s).quality;
      cost += pick(s).cost;
    }
    return { quality: scored.length === 0 ? 0 : quality / scored.length, cost };
  };
  const router = figures((s) => s.router);
  const strong = figures((s) => s.strong);
  const cheapest = figures((s) => s.cheapest);
  const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b);
  return {
    items: scored.length,
    router,
    strong,
    oracle: figures((s) => s.oracle),
    cheapest,
    quality_retained: ratio(router.quality, strong.quality),
    cost_share: ratio(router.cost, strong.cost),
    cost_saved: strong.cost - router.cost,
    gap_recovered: ratio(router.quality - cheapest.quality, strong.quality - cheapest.quality),
  };
}

function pickStrongModel(items: readonly EvalItem[], resolve: (item: EvalItem, model: string) => ResolvedOutcome | undefined): string {
  const totals = new Map<string, { quality: number; cost: number; n: number }>();
  for (const item of items) {
    for (const model of Object.keys(item.outcomes)) {
      const outcome = resolve(item, model) as ResolvedOutcome;
      const t = totals.get(model) ?? { quality: 0, cost: 0, n: 0 };
      totals.set(model, { quality: t.quality + outcome.quality, cost: t.cost + outcome.cost, n: t.n + 1 });
    }
  }
  // A model labelled only on a few easy items must not pass for the strong one.
  const everywhere = [...totals].filter(([, t]) => t.n === items.length);
  const pool = everywhere.length > 0 ? everywhere : [...totals];
  const means = pool.map(([model, t]): ResolvedOutcome => ({ model, quality: t.quality / t.n, cost: t.cost / t.n }));
  return best(means, byQualityThenCost).model;
}

type Order = (a: ResolvedOutcome, b: ResolvedOutcome) => number;
const byId = (a: ResolvedOutcome, b: ResolvedOutcome): number => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0);
const byQualityThenCost: Order = (a, b) => b.quality - a.quality || a.cost - b.cost || byId(a, b);
const byCostThenQuality: Order = (a, b) => a.cost - b.cost || b.quality - a.quality || byId(a, b);
const best = (outcomes: readonly ResolvedOutcome[], order: Order): ResolvedOutcome => [...outcomes].sort(order)[0] as ResolvedOutcome;
