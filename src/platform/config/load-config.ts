import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Ajv } from 'ajv';
import type { TSchema } from 'typebox';
import { composeConfigSchema, DURATION_DESCRIPTION, PATH_DESCRIPTION, type Config } from './schema.ts';
import { parseDuration } from './duration.ts';

/** Thrown when the merged configuration does not fit the schema; the message names every bad key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface LoadConfigOptions {
  /** Folder holding default.yaml and environments/. */
  readonly configDir: string;
  /** The environment variables to read (the CLI passes process.env; tests pass their own). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Applied last, for tests and the CLI's flags. */
  readonly overrides?: Record<string, unknown>;
  /** The modules' sections (a registry's `configSections`): their defaults come first, their schemas join the kernel's. */
  readonly sections: ReadonlyArray<{ readonly key: string; readonly schema: TSchema; readonly defaults: unknown }>;
}

type Tree = Record<string, unknown>;
const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    out[key] = isTree(value) && isTree(out[key]) ? merge(out[key], value) : value;
  }
  return out;
}

function readYaml(file: string): Tree {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${file}: ${(error as Error).message}`);
  }
  if (parsed == null) return {};
  if (!isTree(parsed)) throw new ConfigError(`${file}: expected a mapping at the top level`);
  return parsed;
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1] as string] = value;
}

/** Well-known variables first, then `BLOCKS__a__b=value` for any key (the value read as JSON when it parses, else as text). */
function fromEnvironment(env: LoadConfigOptions['env']): Tree {
  const tree: Tree = {};
  const named: Array<[string, string[]]> = [
    ['BLOCKS_DATA_DIR', ['data_dir']],
    ['DATABASE_URL', ['database', 'url']],
    ['NATS_URL', ['bus', 'nats_url']],
    ['BUS', ['bus', 'kind']],
    ['LOG_LEVEL', ['log', 'level']],
    ['BLOCKS_KEY_ENCRYPTION_KEY', ['auth', 'key_encryption_key']],
    ['BLOCKS_GATEWAY_PORT', ['services', 'gateway', 'port']],
    ['BLOCKS_AUTONOMOUS_PORT', ['services', 'autonomous', 'port']],
    ['BLOCKS_COLLABORATIVE_PORT', ['services', 'collaborative', 'port']],
  ];
  for (const [variable, path] of named) {
    const raw = env[variable];
    if (raw !== undefined && raw !== '') setPath(tree, path, path.at(-1)?.endsWith('port') ? Number(raw) : raw);
  }
  const redis = env.REDIS_URL;
  if (redis) {
    setPath(tree, ['cache', 'redis_url'], redis);
    setPath(tree, ['bus', 'redis_url'], redis);
  }
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith('BLOCKS__') || raw === undefined) continue;
    setPath(tree, variable.slice('BLOCKS__'.length).toLowerCase().split('__'), parseVariable(raw));
  }
  return tree;
}

function parseVariable(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw; // not JSON: a plain string such as `blocks:` or `30s`
  }
}

/**
 * Converts every value the schema marks as a duration from `30s` form to milliseconds, and resolves
 * every relative path it marks as a file against `configDir`, in place.
 */
function normalise(schema: unknown, value: unknown, holder: Tree, key: string, configDir: string): void {
  if (!isTree(schema)) return;
  if (schema.description === DURATION_DESCRIPTION) {
    const ms = parseDuration(value);
    if (ms !== undefined) holder[key] = ms;
    return;
  }
  if (schema.description === PATH_DESCRIPTION) {
    if (typeof value === 'string' && value !== '') holder[key] = resolve(configDir, value);
    return;
  }
  if (!isTree(value)) return;
  const properties = schema.properties;
  if (isTree(properties)) {
    for (const [name, child] of Object.entries(properties)) normalise(child, value[name], value, name, configDir);
  }
  // Records (a map of named entries, e.g. rate-limit tiers) carry their entry schema under patternProperties.
  const patterns = schema.patternProperties;
  if (isTree(patterns)) {
    for (const [pattern, child] of Object.entries(patterns)) {
      const matches = new RegExp(pattern);
      for (const name of Object.keys(value)) if (matches.test(name)) normalise(child, value[name], value, name, configDir);
    }
  }
}

/**
 * Reads default.yaml, environments/<env>.yaml (env from BLOCKS_ENV, then NODE_ENV, then
 * `development`) and the environment, validates the result and returns it frozen.
 * Throws ConfigError naming each bad key.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const configDir = resolve(options.configDir);
  const envName = options.env.BLOCKS_ENV || options.env.NODE_ENV || 'development';
  // Module defaults first: the files and the environment are merged over them.
  let tree: Tree = {};
  for (const section of options.sections) tree = merge(tree, { [section.key]: structuredClone(section.defaults) });
  tree = merge(tree, readYaml(join(configDir, 'default.yaml')));
  const envFile = join(configDir, 'environments', `${envName}.yaml`);
  if (existsSync(envFile)) tree = merge(tree, readYaml(envFile));
  tree = merge(tree, { env: envName });
  tree = merge(tree, fromEnvironment(options.env));
  // A copy: durations are converted in place and the result is frozen, and neither may reach the caller's object.
  if (options.overrides) tree = merge(tree, structuredClone(options.overrides));

  const schema = composeConfigSchema(options.sections);
  const holder: Tree = { root: tree };
  normalise(schema, tree, holder, 'root', configDir);
  const validate = new Ajv({ allErrors: true, strict: false, verbose: true }).compile(schema);
  if (!validate(tree)) {
    const problems = (validate.errors ?? [])
      .filter((e) => e.keyword !== 'anyOf')
      .map((e) => {
        const path = e.instancePath.slice(1).replaceAll('/', '.') || '(root)';
        if (e.keyword === 'additionalProperties') {
          return `${path === '(root)' ? '' : `${path}.`}${String(e.params.additionalProperty)}: unknown key`;
        }
        if (e.keyword === 'enum') return `${path}: must be one of ${(e.params.allowedValues as string[]).join(', ')}`;
        const isDuration = (e.parentSchema as { description?: string } | undefined)?.description === DURATION_DESCRIPTION;
        return `${path}: ${isDuration ? 'must be a duration such as 30s, 300ms or 5m' : (e.message ?? 'is invalid')}`;
      });
    throw new ConfigError(`invalid configuration:\n  ${[...new Set(problems)].join('\n  ')}`);
  }
  // Validated against the kernel's schema and every section: the kernel's part is typed, each module reads its own.
  return deepFreeze(tree) as unknown as Config;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
