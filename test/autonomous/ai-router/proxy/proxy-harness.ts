import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { RunningBlocks } from '../../../../src/start.ts';
import { captureLogs, eventually, startTestBlocks, tempDir, testConfig, type CapturedLogs } from '../../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../../support/credentials.ts';
import { startFakeAnthropic, startFakeOpenAi, type FakeBehaviour, type FakeProvider } from '../../../support/fake-providers/index.ts';

/** Test models: `auto` ranks them alpha, beta, gamma (quality), all at the same price and latency. */
export const MODELS = {
  alpha: { provider: 'fake-a', quality: 0.99 },
  beta: { provider: 'fake-b', quality: 0.9 },
  gamma: { provider: 'fake-c', quality: 0.8 },
} as const;
export type ModelName = keyof typeof MODELS;

export const FAKE_B_KEY = 'sk-test-fake-b';

/** USD per million tokens, input and output: high enough that costs are visible in events. */
export const PRICES = { input: 1, output: 2 };

export interface CallEvent {
  readonly event_type: string;
  readonly correlation_id: string;
  readonly payload: {
    request_id: string;
    decision_id: string | null;
    tenant: string;
    api_key_id: string | null;
    model: string;
    provider: string | null;
    deployment: string | null;
    task_type: string;
    complexity: string;
    confidence: number | null;
    stream: boolean;
    cached: boolean;
    prompt_tokens: number;
    completion_tokens: number;
    cost_usd: number;
    latency_ms: number;
    attempts: { model: string; provider: string; deployment: string; outcome: string; kind: string | null; latency_ms: number }[];
    error_code?: string;
    status?: number;
  };
}

export interface ChatOptions {
  /** Sent last, over the defaults; an `authorization` or `x-api-key` here replaces the default key. */
  readonly headers?: Record<string, string>;
  /** The tenant whose API key the call carries ('default' unless said). */
  readonly tenant?: string;
  /** The scopes of that key (every known scope unless said). */
  readonly scopes?: readonly string[];
  /** Send no credential at all. */
  readonly anonymous?: boolean;
  readonly via?: 'gateway' | 'autonomous';
  readonly signal?: AbortSignal;
}

export interface ProxyHarness {
  readonly blocks: RunningBlocks;
  /** fake-a and fake-b speak OpenAI, fake-c Anthropic. */
  readonly fakes: Readonly<Record<'fake-a' | 'fake-b' | 'fake-c' | 'fake-a2', FakeProvider>>;
  readonly logs: CapturedLogs;
  /** Real identity API keys of this Blocks, one per tenant and scope set. */
  readonly credentials: TestCredentials;
  /** POST /v1/chat/completions on the autonomous service (or the gateway), with an API key of `tenant` unless the caller sends its own. */
  chat(body: unknown, options?: ChatOptions): Promise<Response>;
  /** The call events with this correlation id, once `count` of them are committed. */
  eventsFor(correlationId: string, count?: number): Promise<CallEvent[]>;
  setAll(behaviour: FakeBehaviour): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Environment for real services (DATABASE_URL, REDIS_URL, …); embedded defaults otherwise. */
  readonly env?: Record<string, string>;
  /** Merged over the test configuration. */
  readonly overrides?: Record<string, unknown>;
  /** Merged over the harness' `ai` section. */
  readonly aiOverrides?: Record<string, unknown>;
  /** Extra catalog entries, or replacements by model id. */
  readonly models?: Record<string, unknown>[];
}

const modelEntry = (model: string, provider: string, quality: number, extra: Record<string, unknown> = {}) => ({
  provider,
  model,
  task_types: ['chat', 'code'],
  context_window: 100_000,
  input_price_per_mtok: PRICES.input,
  output_price_per_mtok: PRICES.output,
  quality: { chat: { low: quality, medium: quality, high: quality }, code: { low: quality, medium: quality, high: quality } },
  typical_latency_ms: 100,
  capabilities: ['tools', 'json_mode', 'streaming', 'vision'],
  ...extra,
});

/**
 * Blocks (gateway + autonomous) whose catalog holds three models on three fake providers
 * started here, with short timeouts and breakers that open after 3 failures and try again after
 * 300 ms. Learning is damped (a huge prior) and exploration is off, so `auto` always ranks
 * alpha, beta, gamma unless a breaker says otherwise.
 */
export async function startProxyHarness(options: HarnessOptions = {}): Promise<ProxyHarness> {
  const fakes = {
    'fake-a': await startFakeOpenAi({ kind: 'answer' }),
    'fake-b': await startFakeOpenAi({ kind: 'answer' }),
    'fake-c': await startFakeAnthropic({ kind: 'answer' }),
    'fake-a2': await startFakeOpenAi({ kind: 'answer' }),
  };
  const dir = tempDir('blocks-proxy');
  const catalogFile = join(dir.path, 'models.yaml');
  const entries = [
    modelEntry('alpha', 'fake-a', MODELS.alpha.quality),
    modelEntry('beta', 'fake-b', MODELS.beta.quality),
    modelEntry('gamma', 'fake-c', MODELS.gamma.quality),
    // Two deployments of one model on two servers, for load balancing and deployment fallback.
    modelEntry('delta', 'fake-a', 0.5, {
      deployments: [
        { id: 'one', provider: 'fake-a', weight: 1 },
        { id: 'two', provider: 'fake-a2', weight: 1, upstream_model: 'delta-upstream' },
      ],
    }),
  ];
  for (const extra of options.models ?? []) {
    const at = entries.findIndex((e) => e.model === extra['model']);
    if (at >= 0) entries[at] = { ...entries[at], ...extra } as (typeof entries)[number];
    else entries.push(extra as (typeof entries)[number]);
  }
  writeFileSync(catalogFile, toYaml({ models: entries }));
  const overrides = {
    resilience: { failure_threshold: 3, recovery_timeout: 300 },
    ai: {
      catalog_file: catalogFile,
      providers: {
        'fake-a': { protocol: 'openai', base_url: fakes['fake-a'].baseUrl, region: 'us' },
        'fake-b': {
          protocol: 'openai',
          base_url: fakes['fake-b'].baseUrl,
          region: 'eu',
          credentials_ref: 'env:BLOCKS_SECRET_TEST_FAKE_B_KEY',
        },
        'fake-c': { protocol: 'anthropic', base_url: fakes['fake-c'].baseUrl, region: 'eu', headers: { 'anthropic-beta': 'test' } },
        'fake-a2': { protocol: 'openai', base_url: fakes['fake-a2'].baseUrl, region: 'eu' },
      },
      routing: { exploration: 0 },
      learning: { prior_strength: 1_000_000 },
      proxy: { attempt_timeout: 1000, request_timeout: 3000, max_attempts: 3 },
      ...options.aiOverrides,
    },
    ...options.overrides,
  };
  // The key fake-b's deployments send, named by `credentials_ref: env:BLOCKS_SECRET_TEST_FAKE_B_KEY`.
  process.env['BLOCKS_SECRET_TEST_FAKE_B_KEY'] = FAKE_B_KEY;
  const logs = captureLogs('warn');
  const config = testConfig({ BLOCKS_DATA_DIR: dir.path, ...options.env }, overrides);
  const blocks = await startTestBlocks({ config, roles: ['gateway', 'autonomous'], logger: logs.logger });
  const credentials = testCredentials(blocks);

  return {
    blocks,
    fakes,
    logs,
    credentials,
    chat: async (body, call = {}) => {
      const own = call.headers !== undefined && Object.keys(call.headers).some((name) => CREDENTIAL_HEADERS.has(name.toLowerCase()));
      const key = call.anonymous === true || own ? {} : await credentials.headers(call.tenant, call.scopes);
      return fetch(`${blocks.urls[call.via ?? 'autonomous'] as string}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...key, ...call.headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        ...(call.signal === undefined ? {} : { signal: call.signal }),
      });
    },
    eventsFor: async (correlationId, count = 1) =>
      eventually(
        async () =>
          (
            await blocks.platform.db.query<CallEvent>(
              `SELECT event_type, correlation_id, payload FROM events
                WHERE correlation_id = $1 AND event_type IN ('ai.request.completed', 'ai.request.failed') ORDER BY event_id`,
              [correlationId],
            )
          ).rows,
        (rows) => rows.length >= count,
      ),
    setAll(behaviour) {
      for (const fake of Object.values(fakes)) fake.setBehaviour(behaviour);
    },
    async close() {
      await blocks.close();
      await Promise.all(Object.values(fakes).map((fake) => fake.close()));
      dir.remove();
    },
  };
}

/** Headers that carry a credential: a caller sending one means it, and gets no default key beside it. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'x-api-key']);

/** A chat request; `text` is what the fakes echo. */
export const chatBody = (model: string, text = 'hello there', extra: Record<string, unknown> = {}) => ({
  model,
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: text },
  ],
  ...extra,
});

export const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
};

/** The SSE `data:` payloads of a stream body, in order. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}

/** Expected cost for usage at the test prices. */
export const costFor = (prompt: number, completion: number): number => (prompt * PRICES.input + completion * PRICES.output) / 1e6;
