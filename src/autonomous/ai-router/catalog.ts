import { isSecretError, type SecretResolver } from '../../platform/secrets/index.ts';
import { invalidRouterConfig } from './errors.ts';
import { CAPABILITIES, type Capability, type Deployment, type ModelSpec, type QualityByComplexity } from './types.ts';

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
  'capabilities',
  'typical_latency_ms',
  'deployments',
  'credentials_ref',
]);
const DEPLOYMENT_FIELDS = new Set(['id', 'provider', 'base_url', 'credentials_ref', 'upstream_model', 'weight', 'region']);
/** What a model without a `capabilities` list is taken to support: what every current chat model does. */
export const DEFAULT_CAPABILITIES: readonly Capability[] = Object.freeze(['tools', 'json_mode', 'streaming']);
const DEPLOYMENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const COMPLEXITIES = ['low', 'medium', 'high'] as const;

export interface CatalogOptions {
  /** Providers configured in `ai.providers`; when given, a deployment naming another is rejected. */
  readonly providers?: readonly string[];
  /**
   * When given, every `credentials_ref` must be within the operator's `secrets` bounds (the API and
   * config/models.yaml). Absent when the stored catalog is loaded: a reference stored before the
   * bounds is refused when it is read, and must not take the whole catalog down with it.
   */
  readonly secrets?: Pick<SecretResolver, 'check'>;
}

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
 * Optional: `capabilities` (default {@link DEFAULT_CAPABILITIES}), `typical_latency_ms` (default
 * null), `credentials_ref` (the key of every deployment that names none) and `deployments`. Without
 * `deployments` a model has one, `default`, on its provider; each deployment's `provider`
 * defaults to the model's and its `weight` to 1. With `options.secrets`, each `credentials_ref`
 * must be within the `secrets` bounds (the detail says why not, naming the reference).
 *
 * @throws BlocksError `INVALID_ROUTER_CONFIG` whose detail and `path` extension name the first
 *   bad entry and field, e.g. `models[1] (gpt-4o).input_price_per_mtok: must be ... (got -1)`.
 */
export function loadModelCatalog(raw: unknown, options: CatalogOptions = {}): ModelCatalog {
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
    const spec = parseModel(entry, index, options);
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

function parseModel(entry: unknown, index: number, options: CatalogOptions): ModelSpec {
  const { providers, secrets } = options;
  if (!isRecord(entry)) throw invalidRouterConfig(`models[${index}]`, `must be a mapping (got ${shown(entry)})`);
  const id = typeof entry.model === 'string' && entry.model !== '' ? entry.model : undefined;
  const where = id === undefined ? `models[${index}]` : `models[${index}] (${id})`;
  function fail(field: string, problem: string): never {
    throw invalidRouterConfig(`${where}.${field}`, problem);
  }
  const checkSecret = (field: string, ref: string): void => {
    try {
      secrets?.check(ref);
    } catch (error) {
      if (!isSecretError(error)) throw error;
      fail(field, error.detail);
    }
  };

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

  const capabilities = entry.capabilities ?? DEFAULT_CAPABILITIES;
  if (!Array.isArray(capabilities)) fail('capabilities', `must be a list of ${CAPABILITIES.join(', ')} (got ${shown(capabilities)})`);
  capabilities.forEach((capability: unknown, i) => {
    if (!(CAPABILITIES as readonly unknown[]).includes(capability)) {
      fail(`capabilities[${i}]`, `must be one of ${CAPABILITIES.join(', ')} (got ${shown(capability)})`);
    }
    if (capabilities.indexOf(capability) !== i) fail(`capabilities[${i}]`, `duplicate capability ${shown(capability)}`);
  });

  const latency = entry.typical_latency_ms ?? null;
  if (latency !== null && (typeof latency !== 'number' || !Number.isSafeInteger(latency) || latency < 0)) {
    fail('typical_latency_ms', `must be a non-negative integer number of milliseconds or null (got ${shown(latency)})`);
  }

  const modelCredentials = entry.credentials_ref ?? null;
  if (modelCredentials !== null && (typeof modelCredentials !== 'string' || modelCredentials === '')) {
    fail('credentials_ref', `must be a non-empty string or null (got ${shown(modelCredentials)})`);
  }
  if (modelCredentials !== null) checkSecret('credentials_ref', modelCredentials);
  const rawDeployments = entry.deployments ?? [];
  if (!Array.isArray(rawDeployments)) fail('deployments', `must be a list of deployments (got ${shown(rawDeployments)})`);
  const deployments = rawDeployments.length === 0 ? [{ id: 'default' }] : (rawDeployments as unknown[]);
  const parsedDeployments = deployments.map((raw, i): Deployment => {
    const at = `deployments[${i}]`;
    if (!isRecord(raw)) fail(at, `must be a mapping (got ${shown(raw)})`);
    for (const key of Object.keys(raw)) if (!DEPLOYMENT_FIELDS.has(key)) fail(`${at}.${key}`, 'unknown field');
    if (typeof raw.id !== 'string' || !DEPLOYMENT_ID.test(raw.id)) {
      fail(`${at}.id`, `must be 1-64 letters, digits, '.', '_' or '-' (got ${shown(raw.id)})`);
    }
    if (deployments.slice(0, i).some((other) => isRecord(other) && other.id === raw.id))
      fail(`${at}.id`, `duplicate deployment id '${raw.id}'`);
    const deploymentProvider = raw.provider ?? provider;
    if (typeof deploymentProvider !== 'string' || deploymentProvider === '') {
      fail(`${at}.provider`, `must be a non-empty string (got ${shown(deploymentProvider)})`);
    }
    if (providers !== undefined && !providers.includes(deploymentProvider)) {
      fail(
        rawDeployments.length === 0 ? 'provider' : `${at}.provider`,
        `'${deploymentProvider}' is not configured in ai.providers (configured: ${providers.join(', ')})`,
      );
    }
    const weight = raw.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0)
      fail(`${at}.weight`, `must be a positive number (got ${shown(weight)})`);
    const optional = (field: 'base_url' | 'credentials_ref' | 'upstream_model' | 'region'): string | undefined => {
      const value = raw[field];
      if (value === undefined || value === null) return undefined;
      if (typeof value !== 'string' || value === '' || value.length > 512)
        fail(`${at}.${field}`, `must be a non-empty string (got ${shown(value)})`);
      return value;
    };
    const baseUrl = optional('base_url');
    if (baseUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(baseUrl))
      fail(`${at}.base_url`, `must be an http(s) URL (got ${shown(baseUrl)})`);
    const ownCredentials = optional('credentials_ref');
    if (ownCredentials !== undefined) checkSecret(`${at}.credentials_ref`, ownCredentials);
    const credentials = ownCredentials ?? modelCredentials ?? undefined;
    const upstreamModel = optional('upstream_model');
    const region = optional('region');
    return Object.freeze({
      id: raw.id,
      provider: deploymentProvider,
      weight,
      ...(baseUrl === undefined ? {} : { base_url: baseUrl }),
      ...(credentials === undefined ? {} : { credentials_ref: credentials }),
      ...(upstreamModel === undefined ? {} : { upstream_model: upstreamModel }),
      ...(region === undefined ? {} : { region }),
    });
  });

  return Object.freeze({
    provider,
    model: id,
    task_types: Object.freeze(tasks),
    context_window: contextWindow,
    input_price_per_mtok: inputPrice,
    output_price_per_mtok: outputPrice,
    quality: Object.freeze(parsedQuality),
    capabilities: Object.freeze([...(capabilities as Capability[])]),
    typical_latency_ms: latency,
    deployments: Object.freeze(parsedDeployments),
  });
}
