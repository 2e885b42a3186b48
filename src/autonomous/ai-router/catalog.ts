import { invalidRouterConfig } from './errors.ts';
import type { ModelSpec, QualityByComplexity } from './types.ts';

/** A validated, frozen set of models with the lookups the decider needs. */
export interface ModelCatalog {
  /** Models in the order the configuration lists them. */
  readonly models: readonly ModelSpec[];
  /** Every task type some model serves, sorted. */
  readonly taskTypes: readonly string[];
  getModel(id: string): ModelSpec | undefined;
  /** Models serving the task type, in catalog order; empty for an unknown task type. */
  modelsForTask(taskType: string): readonly ModelSpec[];
}

const MODEL_FIELDS = new Set([
  'provider',
  'model',
  'task_types',
  'context_window',
  'input_price_per_mtok',
  'output_price_per_mtok',
  'quality',
]);
const COMPLEXITIES = ['low', 'medium', 'high'] as const;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const shown = (value: unknown): string => {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  // Objects are named above; what is left (numbers, booleans, bigints) prints as itself.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  return typeof value === 'string' ? `'${value}'` : String(value);
};

/**
 * Validates the model catalog (config/models.yaml, already parsed: the document `{ models: [...] }`
 * or its `models` list) and returns a frozen catalog that shares nothing with `raw`.
 *
 * Each entry needs a non-empty `provider` and unique `model` id, a non-empty list of distinct
 * `task_types`, a positive integer `context_window`, finite non-negative prices, and a `quality`
 * entry `{ low, medium, high }` (each 0..1) for exactly the declared task types. Unknown fields
 * are rejected so that a misspelt field fails instead of being ignored.
 *
 * @throws BlocksError `INVALID_ROUTER_CONFIG` whose detail and `path` extension name the first
 *   bad entry and field, e.g. `models[1] (gpt-4o).input_price_per_mtok: must be ... (got -1)`.
 */
export function loadModelCatalog(raw: unknown): ModelCatalog {
  let list = raw;
  if (isRecord(raw)) {
    for (const key of Object.keys(raw)) if (key !== 'models') throw invalidRouterConfig(key, 'unknown field');
    list = raw.models;
  }
  if (!Array.isArray(list)) throw invalidRouterConfig('models', `must be a list of models (got ${shown(list)})`);
  if (list.length === 0) throw invalidRouterConfig('models', 'must list at least one model');

  const byId = new Map<string, ModelSpec>();
  const byTask = new Map<string, ModelSpec[]>();
  list.forEach((entry: unknown, index) => {
    const spec = parseModel(entry, index);
    if (byId.has(spec.model)) {
      throw invalidRouterConfig(`models[${index}] (${spec.model}).model`, `duplicate model id '${spec.model}'`);
    }
    byId.set(spec.model, spec);
    for (const taskType of spec.task_types) {
      const serving = byTask.get(taskType) ?? [];
      serving.push(spec);
      byTask.set(taskType, serving);
    }
  });

  const models = Object.freeze([...byId.values()]);
  const taskTypes = Object.freeze([...byTask.keys()].sort());
  const frozenByTask = new Map([...byTask].map(([task, serving]) => [task, Object.freeze(serving)] as const));
  const none: readonly ModelSpec[] = Object.freeze([]);
  return Object.freeze({
    models,
    taskTypes,
    getModel: (id: string) => byId.get(id),
    modelsForTask: (taskType: string) => frozenByTask.get(taskType) ?? none,
  });
}

function parseModel(entry: unknown, index: number): ModelSpec {
  if (!isRecord(entry)) throw invalidRouterConfig(`models[${index}]`, `must be a mapping (got ${shown(entry)})`);
  const id = typeof entry.model === 'string' && entry.model !== '' ? entry.model : undefined;
  const where = id === undefined ? `models[${index}]` : `models[${index}] (${id})`;
  function fail(field: string, problem: string): never {
    throw invalidRouterConfig(`${where}.${field}`, problem);
  }

  for (const key of Object.keys(entry)) if (!MODEL_FIELDS.has(key)) fail(key, 'unknown field');
  if (id === undefined) fail('model', `must be a non-empty string (got ${shown(entry.model)})`);
  const provider = entry.provider;
  if (typeof provider !== 'string' || provider === '') {
    fail('provider', `must be a non-empty string (got ${shown(provider)})`);
  }

  const taskTypes = entry.task_types;
  if (!Array.isArray(taskTypes) || taskTypes.length === 0) {
    fail('task_types', `must be a non-empty list of task types (got ${shown(taskTypes)})`);
  }
  const tasks: string[] = [];
  taskTypes.forEach((task: unknown, i) => {
    if (typeof task !== 'string' || task === '') fail(`task_types[${i}]`, `must be a non-empty string (got ${shown(task)})`);
    if (tasks.includes(task)) fail(`task_types[${i}]`, `duplicate task type '${task}'`);
    tasks.push(task);
  });

  const contextWindow = entry.context_window;
  if (typeof contextWindow !== 'number' || !Number.isSafeInteger(contextWindow) || contextWindow <= 0) {
    fail('context_window', `must be a positive integer number of tokens (got ${shown(contextWindow)})`);
  }
  const price = (field: 'input_price_per_mtok' | 'output_price_per_mtok'): number => {
    const value = entry[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      fail(field, `must be a non-negative number of USD per million tokens (got ${shown(value)})`);
    }
    return value;
  };
  const inputPrice = price('input_price_per_mtok');
  const outputPrice = price('output_price_per_mtok');

  const quality = entry.quality;
  if (!isRecord(quality)) fail('quality', `must be a mapping from task type to { low, medium, high } (got ${shown(quality)})`);
  for (const task of Object.keys(quality)) {
    if (!tasks.includes(task)) fail(`quality.${task}`, `task type '${task}' is not in task_types`);
  }
  const parsedQuality: Record<string, QualityByComplexity> = {};
  for (const task of tasks) {
    const levels = quality[task];
    if (levels === undefined) fail(`quality.${task}`, `missing for declared task type '${task}'`);
    if (!isRecord(levels)) fail(`quality.${task}`, `must be a mapping { low, medium, high } (got ${shown(levels)})`);
    for (const key of Object.keys(levels)) {
      if (!(COMPLEXITIES as readonly string[]).includes(key))
        fail(`quality.${task}.${key}`, 'unknown complexity (expected low, medium, high)');
    }
    const level = (complexity: (typeof COMPLEXITIES)[number]): number => {
      const value = levels[complexity];
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
        fail(`quality.${task}.${complexity}`, `must be a number from 0 to 1 (got ${shown(value)})`);
      }
      return value;
    };
    parsedQuality[task] = Object.freeze({ low: level('low'), medium: level('medium'), high: level('high') });
  }

  return Object.freeze({
    provider,
    model: id,
    task_types: Object.freeze(tasks),
    context_window: contextWindow,
    input_price_per_mtok: inputPrice,
    output_price_per_mtok: outputPrice,
    quality: Object.freeze(parsedQuality),
    capabilities: Object.freeze(['tools', 'json_mode', 'streaming'] as const),
    typical_latency_ms: null,
    deployments: Object.freeze([Object.freeze({ id: 'default', provider, weight: 1 })]),
  });
}
