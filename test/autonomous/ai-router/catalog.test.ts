import { describe, expect, it } from 'vitest';
import { loadModelCatalog, type CatalogOptions } from '../../../src/autonomous/ai-router/catalog.ts';
import { isBlocksError } from '../../../src/platform/errors.ts';
import { createSecretResolver } from '../../../src/platform/secrets/index.ts';

const model = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  provider: 'openai',
  model: 'alpha',
  task_types: ['chat', 'code'],
  context_window: 8000,
  input_price_per_mtok: 1,
  output_price_per_mtok: 2,
  quality: {
    chat: { low: 0.9, medium: 0.8, high: 0.7 },
    code: { low: 0.85, medium: 0.75, high: 0.6 },
  },
  ...overrides,
});

/** Loads `raw`, expecting INVALID_ROUTER_CONFIG at `path` with `fragment` in the detail. */
function expectConfigError(raw: unknown, path: string, fragment: string, options?: CatalogOptions): void {
  let caught: unknown;
  try {
    loadModelCatalog(raw, options);
  } catch (error) {
    caught = error;
  }
  if (!isBlocksError(caught)) throw new Error(`expected a BlocksError, got ${String(caught)}`);
  expect(caught.code).toBe('INVALID_ROUTER_CONFIG');
  expect(caught.status).toBe(500);
  expect(caught.extensions.path).toBe(path);
  expect(caught.detail).toContain(path);
  expect(caught.detail).toContain(fragment);
}

describe('loadModelCatalog', () => {
  it('exposes the models in order and looks them up by id and by task type', () => {
    const catalog = loadModelCatalog([
      model(),
      model({ provider: 'anthropic', model: 'beta', task_types: ['code'], quality: { code: { low: 1, medium: 0.5, high: 0 } } }),
    ]);
    expect(catalog.models.map((m) => m.model)).toEqual(['alpha', 'beta']);
    expect(catalog.taskTypes).toEqual(['chat', 'code']);
    expect(catalog.getModel('beta')?.provider).toBe('anthropic');
    expect(catalog.getModel('gamma')).toBeUndefined();
    expect(catalog.modelsForTask('code').map((m) => m.model)).toEqual(['alpha', 'beta']);
    expect(catalog.modelsForTask('chat').map((m) => m.model)).toEqual(['alpha']);
    expect(catalog.modelsForTask('vision')).toEqual([]);
    expect(catalog.getModel('beta')?.quality.code).toEqual({ low: 1, medium: 0.5, high: 0 });
  });

  it('accepts the models.yaml document as well as its models list', () => {
    expect(loadModelCatalog({ models: [model()] }).models[0]?.model).toBe('alpha');
  });

  it('shares nothing with the raw configuration and cannot be changed', () => {
    const raw = [model()];
    const catalog = loadModelCatalog(raw);
    (raw[0] as { task_types: string[] }).task_types.push('reasoning');
    (raw[0] as { quality: { chat: { low: number } } }).quality.chat.low = 0;
    expect(catalog.getModel('alpha')?.task_types).toEqual(['chat', 'code']);
    expect(catalog.getModel('alpha')?.quality.chat?.low).toBe(0.9);
    expect(Object.isFrozen(catalog.getModel('alpha'))).toBe(true);
    expect(Object.isFrozen(catalog.models)).toBe(true);
  });

  it('rejects something that is not a list of models', () => {
    expectConfigError('gpt-4o', 'models', 'must be a list');
    expectConfigError({ models: 'gpt-4o' }, 'models', 'must be a list');
    expectConfigError({ models: [model()], extra: 1 }, 'extra', 'unknown field');
  });

  it('rejects an empty catalog', () => {
    expectConfigError([], 'models', 'at least one model');
  });

  it('rejects an entry that is not a mapping', () => {
    expectConfigError([model(), 'beta'], 'models[1]', 'must be a mapping');
  });

  it('rejects duplicate model ids, naming the second entry', () => {
    expectConfigError([model(), model({ provider: 'azure' })], 'models[1] (alpha).model', "duplicate model id 'alpha'");
  });

  it('rejects a missing or empty model id', () => {
    expectConfigError([model({ model: '' })], 'models[0].model', 'non-empty string');
    expectConfigError([model({ model: undefined })], 'models[0].model', 'non-empty string');
  });

  it('rejects a missing provider', () => {
    expectConfigError([model({ provider: 3 })], 'models[0] (alpha).provider', 'non-empty string (got 3)');
  });

  it('rejects negative prices', () => {
    expectConfigError([model({ input_price_per_mtok: -1 })], 'models[0] (alpha).input_price_per_mtok', 'non-negative');
    expectConfigError([model({ output_price_per_mtok: -0.5 })], 'models[0] (alpha).output_price_per_mtok', '(got -0.5)');
    expectConfigError([model({ input_price_per_mtok: '1' })], 'models[0] (alpha).input_price_per_mtok', "(got '1')");
  });

  it('accepts free models (price 0)', () => {
    const catalog = loadModelCatalog([model({ input_price_per_mtok: 0, output_price_per_mtok: 0 })]);
    expect(catalog.getModel('alpha')?.input_price_per_mtok).toBe(0);
  });

  it('rejects a context window that is not a positive integer', () => {
    expectConfigError([model({ context_window: 0 })], 'models[0] (alpha).context_window', 'positive integer');
    expectConfigError([model({ context_window: 1000.5 })], 'models[0] (alpha).context_window', 'positive integer');
  });

  it('rejects empty or malformed task_types', () => {
    expectConfigError([model({ task_types: [] })], 'models[0] (alpha).task_types', 'non-empty list');
    expectConfigError([model({ task_types: 'chat' })], 'models[0] (alpha).task_types', 'non-empty list');
    expectConfigError([model({ task_types: ['chat', ''] })], 'models[0] (alpha).task_types[1]', 'non-empty string');
    expectConfigError([model({ task_types: ['chat', 'chat'] })], 'models[0] (alpha).task_types[1]', "duplicate task type 'chat'");
  });

  it('rejects quality out of 0..1', () => {
    const quality = { chat: { low: 1.2, medium: 0.8, high: 0.7 }, code: { low: 0.85, medium: 0.75, high: 0.6 } };
    expectConfigError([model({ quality })], 'models[0] (alpha).quality.chat.low', 'from 0 to 1 (got 1.2)');
    const negative = { chat: { low: 0.9, medium: 0.8, high: 0.7 }, code: { low: 0.85, medium: 0.75, high: -0.1 } };
    expectConfigError([model({ quality: negative })], 'models[0] (alpha).quality.code.high', '(got -0.1)');
  });

  it('rejects a missing or unknown complexity level', () => {
    const missing = { chat: { low: 0.9, high: 0.7 }, code: { low: 0.85, medium: 0.75, high: 0.6 } };
    expectConfigError([model({ quality: missing })], 'models[0] (alpha).quality.chat.medium', '(got nothing)');
    const unknown = { chat: { low: 0.9, medium: 0.8, high: 0.7, extreme: 0.1 }, code: { low: 0.85, medium: 0.75, high: 0.6 } };
    expectConfigError([model({ quality: unknown })], 'models[0] (alpha).quality.chat.extreme', 'unknown complexity');
  });

  it('rejects quality missing for a declared task type', () => {
    const quality = { chat: { low: 0.9, medium: 0.8, high: 0.7 } };
    expectConfigError([model({ quality })], 'models[0] (alpha).quality.code', "missing for declared task type 'code'");
  });

  it('rejects quality for a task type the model does not declare', () => {
    const quality = {
      chat: { low: 0.9, medium: 0.8, high: 0.7 },
      code: { low: 0.85, medium: 0.75, high: 0.6 },
      reasoning: { low: 0.5, medium: 0.4, high: 0.3 },
    };
    expectConfigError([model({ quality })], 'models[0] (alpha).quality.reasoning', 'not in task_types');
  });

  it('rejects an unknown (e.g. misspelt) field', () => {
    expectConfigError([model({ input_price_per_mtoks: 1 })], 'models[0] (alpha).input_price_per_mtoks', 'unknown field');
  });

  it('gives a model without deployments one default deployment on its provider, and the default capabilities', () => {
    const [spec] = loadModelCatalog([model({ credentials_ref: 'env:KEY' })]).models;
    expect(spec?.deployments).toEqual([{ id: 'default', provider: 'openai', weight: 1, credentials_ref: 'env:KEY' }]);
    expect(spec?.capabilities).toEqual(['tools', 'json_mode', 'streaming']);
    expect(spec?.typical_latency_ms).toBeNull();
  });

  it("resolves each deployment's provider and weight, and the model's key where a deployment names none", () => {
    const [spec] = loadModelCatalog([
      model({
        credentials_ref: 'env:MODEL_KEY',
        typical_latency_ms: 250,
        capabilities: ['vision'],
        deployments: [
          { id: 'eu', region: 'eu', weight: 2 },
          { id: 'azure', provider: 'azure', credentials_ref: 'env:AZURE', upstream_model: 'my-gpt', base_url: 'https://x.example/v1' },
        ],
      }),
    ]).models;
    expect(spec?.deployments).toEqual([
      { id: 'eu', provider: 'openai', weight: 2, region: 'eu', credentials_ref: 'env:MODEL_KEY' },
      {
        id: 'azure',
        provider: 'azure',
        weight: 1,
        credentials_ref: 'env:AZURE',
        upstream_model: 'my-gpt',
        base_url: 'https://x.example/v1',
      },
    ]);
    expect(spec?.capabilities).toEqual(['vision']);
    expect(spec?.typical_latency_ms).toBe(250);
  });

  it('rejects bad capabilities, latency and deployments, naming the field', () => {
    expectConfigError([model({ capabilities: ['mind_reading'] })], 'models[0] (alpha).capabilities[0]', 'must be one of');
    expectConfigError([model({ capabilities: ['tools', 'tools'] })], 'models[0] (alpha).capabilities[1]', 'duplicate');
    expectConfigError([model({ typical_latency_ms: -1 })], 'models[0] (alpha).typical_latency_ms', 'non-negative');
    expectConfigError([model({ deployments: 'x' })], 'models[0] (alpha).deployments', 'must be a list');
    expectConfigError([model({ deployments: [{ id: 'a b' }] })], 'models[0] (alpha).deployments[0].id', 'letters');
    expectConfigError([model({ deployments: [{ id: 'a' }, { id: 'a' }] })], 'models[0] (alpha).deployments[1].id', 'duplicate');
    expectConfigError([model({ deployments: [{ id: 'a', weight: -2 }] })], 'models[0] (alpha).deployments[0].weight', 'positive');
    expectConfigError([model({ deployments: [{ id: 'a', key: 'sk-1' }] })], 'models[0] (alpha).deployments[0].key', 'unknown field');
    expectConfigError([model({ deployments: [{ id: 'a', base_url: 'file:///etc' }] })], 'models[0] (alpha).deployments[0].base_url', 'URL');
  });

  it('rejects a provider that is not configured when the configured ones are given', () => {
    expect(() => loadModelCatalog([model()], { providers: ['openai'] })).not.toThrow();
    expect(() => loadModelCatalog([model()], { providers: ['anthropic'] })).toThrow(/'openai' is not configured/);
    expect(() => loadModelCatalog([model({ deployments: [{ id: 'x', provider: 'vllm' }] })], { providers: ['openai'] })).toThrow(
      /deployments\[0\]\.provider: 'vllm' is not configured/,
    );
  });

  it('checks every credentials_ref against the secrets bounds when given them, naming the field', () => {
    const secrets = createSecretResolver({
      bounds: { env: ['*_API_KEY'], directories: ['/run/secrets'] },
      dataDir: '/var/lib/blocks',
      env: {},
    });
    const within = model({ credentials_ref: 'env:OPENAI_API_KEY', deployments: [{ id: 'eu', credentials_ref: 'file:/run/secrets/eu' }] });
    expect(() => loadModelCatalog([within], { secrets })).not.toThrow();
    expectConfigError([model({ credentials_ref: 'env:PATH' })], 'models[0] (alpha).credentials_ref', "'env:PATH' is not a variable", {
      secrets,
    });
    expectConfigError(
      [
        model({
          deployments: [{ id: 'eu' }, { id: 'us', credentials_ref: 'file:/run/secrets/../../var/lib/blocks/keys/key-encryption.key' }],
        }),
      ],
      'models[0] (alpha).deployments[1].credentials_ref',
      "is inside Blocks' data directory",
      { secrets },
    );
    expectConfigError(
      [model({ deployments: [{ id: 'eu', credentials_ref: 'vault:x' }] })],
      'models[0] (alpha).deployments[0].credentials_ref',
      'env:NAME or file:',
      {
        secrets,
      },
    );
  });

  it('loads references outside the bounds when not given them: the stored catalog is checked when each key is read', () => {
    const [spec] = loadModelCatalog([model({ deployments: [{ id: 'eu', credentials_ref: 'env:PATH' }] })]).models;
    expect(spec?.deployments[0]?.credentials_ref).toBe('env:PATH');
  });
});
