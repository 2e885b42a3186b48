import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { RunningBlocks } from '../../../../src/start.ts';
import { appendEvent } from '../../../../src/platform/events/index.ts';
import { tempDir } from '../../../support/blocks.ts';

const q = (low: number, medium: number, high: number) => ({ low, medium, high });
const model = (id: string, taskTypes: string[], quality: Record<string, ReturnType<typeof q>>) => ({
  provider: 'openai',
  model: id,
  task_types: taskTypes,
  context_window: 100_000,
  input_price_per_mtok: 1,
  output_price_per_mtok: 2,
  typical_latency_ms: 1000,
  quality,
});

/**
 * A catalog where learning decides: `learn-strong` is a little better than `learn-backup` for code
 * at the same price, so a few failures are enough to swap them; `proxy-a`/`proxy-b` serve
 * extraction, for the proxied-call tests, apart from the others' evidence.
 */
export function writeLearningCatalog(): { path: string; remove(): void } {
  const dir = tempDir('blocks-learning-catalog');
  const path = join(dir.path, 'models.yaml');
  writeFileSync(
    path,
    JSON.stringify({
      models: [
        model('learn-strong', ['code'], { code: q(0.9, 0.9, 0.9) }),
        model('learn-backup', ['code'], { code: q(0.85, 0.85, 0.85) }),
        model('proxy-a', ['extraction'], { extraction: q(0.9, 0.9, 0.9) }),
        model('proxy-b', ['extraction'], { extraction: q(0.8, 0.8, 0.8) }),
      ],
    }),
  );
  return { path, remove: () => dir.remove() };
}

/** Config overrides for the learning tests: the catalog above, and no exploration so routing is deterministic. */
export const learningOverrides = (catalogFile: string): Record<string, unknown> => ({
  ai: { catalog_file: catalogFile, routing: { exploration: 0 } },
});

export interface Decision {
  readonly decision_id: string;
  readonly selected_model: string;
  readonly confidence: number;
}

export interface Client {
  route(body: Record<string, unknown>, tenant?: string): Promise<Decision>;
  feedback(body: unknown, tenant?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  stats(query?: string, tenant?: string): Promise<{ status: number; body: Stats & Record<string, unknown> }>;
}

export interface EstimateRow {
  model: string;
  task_type: string;
  complexity: string;
  prior: { quality: number; latency_ms: number | null };
  observations: number;
  quality: number;
  latency_ms: number | null;
  answer_quality: number;
  outcome_observations: number;
  availability: number;
  call_observations: number;
}

export interface Stats {
  estimates: EstimateRow[];
  calibration: {
    since: string;
    source: string;
    outcomes: number;
    brier_score: number | null;
    expected_calibration_error: number | null;
    bins: Array<{ from: number; to: number; outcomes: number; mean_confidence: number | null; success_rate: number | null }>;
  };
}

/** The headers a call of `tenant` carries: its credential (see test/support/credentials.ts). */
export type CredentialsOf = (tenant: string) => Promise<Record<string, string>>;

/** A client of the learning routes; each call carries a key of `tenant` ('default' unless said). */
export function clientOf(baseUrl: () => string, credentialsOf: CredentialsOf): Client {
  const headers = async (tenant = 'default'): Promise<Record<string, string>> => ({
    'content-type': 'application/json',
    ...(await credentialsOf(tenant)),
  });
  return {
    async route(body, tenant) {
      const res = await fetch(`${baseUrl()}/api/v1/autonomous/ai/route`, {
        method: 'POST',
        headers: await headers(tenant),
        body: JSON.stringify(body),
      });
      if (res.status !== 200) throw new Error(`route answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as Decision;
    },
    async feedback(body, tenant) {
      const res = await fetch(`${baseUrl()}/api/v1/autonomous/ai/feedback`, {
        method: 'POST',
        headers: await headers(tenant),
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async stats(query = '', tenant) {
      const res = await fetch(`${baseUrl()}/api/v1/autonomous/ai/stats${query}`, { headers: await headers(tenant) });
      return { status: res.status, body: (await res.json()) as Stats & Record<string, unknown> };
    },
  };
}

export const estimateOf = (stats: Stats, model: string, taskType: string, complexity: string): EstimateRow => {
  const row = stats.estimates.find((e) => e.model === model && e.task_type === taskType && e.complexity === complexity);
  if (row === undefined) throw new Error(`no estimate for ${model}/${taskType}/${complexity}`);
  return row;
};

/** Writes a proxied call's event to the outbox as the proxy does, and wakes the relay. */
export async function emitCallEvent(
  blocks: RunningBlocks,
  fields: {
    decisionId?: string | null;
    tenant?: string;
    model: string;
    taskType: string;
    complexity: string;
    confidence?: number | null;
    cached?: boolean;
    failed?: boolean;
    attempts: Array<{ model: string; outcome: string; kind: string | null; latency_ms: number }>;
  },
): Promise<{ eventId: string; requestId: string }> {
  const requestId = randomUUID();
  const served = fields.attempts.at(-1);
  const event = await appendEvent(blocks.platform.db, {
    event_type: fields.failed ? 'ai.request.failed' : 'ai.request.completed',
    source_service: 'autonomous.ai-router',
    key: fields.tenant ?? 'default',
    payload: {
      request_id: requestId,
      decision_id: fields.decisionId ?? null,
      tenant: fields.tenant ?? 'default',
      api_key_id: null,
      model: fields.model,
      provider: 'openai',
      deployment: 'default',
      task_type: fields.taskType,
      complexity: fields.complexity,
      confidence: fields.confidence ?? null,
      stream: false,
      cached: fields.cached ?? false,
      prompt_tokens: fields.failed ? 0 : 100,
      completion_tokens: fields.failed ? 0 : 50,
      cost_usd: fields.failed ? 0 : 0.0002,
      latency_ms: fields.attempts.reduce((sum, a) => sum + a.latency_ms, 0),
      attempts: fields.attempts.map((a) => ({ ...a, provider: 'openai', deployment: 'default' })),
      ...(fields.failed ? { error_code: served?.outcome ?? 'PROVIDER_SERVER_ERROR', status: 502 } : {}),
    },
  });
  blocks.platform.relay.notify();
  return { eventId: event.event_id, requestId };
}
