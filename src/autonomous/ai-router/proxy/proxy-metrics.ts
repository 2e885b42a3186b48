import { Histogram, type Counter } from 'prom-client';
import { boundedLabel } from '../../../platform/telemetry/labels.ts';
import type { Metrics } from '../../../platform/telemetry/metrics.ts';
import type { ModelCatalog } from '../catalog.ts';

/** What the proxy reports on /metrics. */
export interface ProxyMetrics {
  /** One call ended: `outcome` is `success`, `cached` or the error code. */
  observe(call: {
    model: string;
    provider: string;
    outcome: string;
    durationMs: number;
    costUsd: number;
    promptTokens: number;
    completionTokens: number;
  }): void;
}

export interface ProxyMetricsOptions {
  /** The catalog calls are checked against: only its models (and their providers) become label values. */
  readonly catalog: () => ModelCatalog | null;
  readonly now?: () => number;
}

const WINDOW_SECONDS = 10;
/** Label values of a model, provider or outcome not in the catalog (or past the bounds below). */
export const UNKNOWN_LABEL = 'unknown';
/** Distinct models and providers ever labelled: far above a catalog's size, a hard stop if it churns. */
const MAX_MODEL_VALUES = 1_000;
/** Distinct outcomes: `success`, `cached` and the error codes a call can end with. */
const MAX_OUTCOME_VALUES = 100;
/** What an outcome looks like: one of ours, or a catalogued error code. */
const OUTCOME = /^(?:success|cached|[A-Z][A-Z0-9_]{1,63})$/;

/**
 * Counters of calls by model, provider and outcome, USD and tokens by model, call duration, and
 * `blocks_ai_requests_per_second`: calls ended per second over the last ten whole seconds.
 *
 * The model a call names comes from the caller: a name that is not a catalog model is counted
 * under `unknown`, as is a provider that serves no deployment of the model, so no request can add
 * series to /metrics (each is kept for the life of the process).
 */
export function createProxyMetrics(metrics: Metrics, options: ProxyMetricsOptions): ProxyMetrics {
  const now = options.now ?? Date.now;
  const modelLabel = boundedLabel({
    accept: (model) => options.catalog()?.getModel(model) !== undefined,
    maxValues: MAX_MODEL_VALUES,
    fallback: UNKNOWN_LABEL,
  });
  const providerLabel = boundedLabel({ accept: () => true, maxValues: MAX_MODEL_VALUES, fallback: UNKNOWN_LABEL });
  const outcomeLabel = boundedLabel({ accept: (outcome) => OUTCOME.test(outcome), maxValues: MAX_OUTCOME_VALUES, fallback: 'other' });
  /** The provider when it is `none` (nothing was called) or serves a deployment of the (catalog) model. */
  const providerOf = (model: string, provider: string): string => {
    if (provider === 'none') return provider;
    const spec = options.catalog()?.getModel(model);
    return spec !== undefined && spec.deployments.some((d) => d.provider === provider) ? providerLabel(provider) : UNKNOWN_LABEL;
  };

  const requests = metrics.counter('blocks_ai_requests_total', 'Calls to /v1/chat/completions by model, provider and outcome', [
    'model',
    'provider',
    'outcome',
  ]);
  const cost = metrics.counter('blocks_ai_cost_usd_total', 'USD charged for proxied calls, by model', ['model']);
  const tokens = metrics.counter('blocks_ai_tokens_total', 'Tokens of proxied calls, by model and kind (prompt, completion)', [
    'model',
    'kind',
  ]);
  const existing = metrics.registry.getSingleMetric('blocks_ai_request_duration_seconds');
  const duration =
    existing instanceof Histogram
      ? (existing as Histogram<'model' | 'outcome'>)
      : new Histogram({
          name: 'blocks_ai_request_duration_seconds',
          help: 'Time from request to the last byte of the answer, by model and outcome',
          labelNames: ['model', 'outcome'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
          registers: [metrics.registry],
        });

  // One slot per second of the window; a slot is reset when its second comes round again.
  const counts = new Float64Array(WINDOW_SECONDS);
  const seconds = new Float64Array(WINDOW_SECONDS);
  const tick = (at: number): void => {
    const second = Math.floor(at / 1000);
    const slot = second % WINDOW_SECONDS;
    if (seconds[slot] !== second) {
      seconds[slot] = second;
      counts[slot] = 0;
    }
    counts[slot] = (counts[slot] ?? 0) + 1;
  };
  if (metrics.registry.getSingleMetric('blocks_ai_requests_per_second') === undefined) {
    metrics.gauge('blocks_ai_requests_per_second', 'Calls to /v1/chat/completions per second over the last 10 s', [], (set) => {
      const current = Math.floor(now() / 1000);
      let total = 0;
      // The current second is still filling: the window is the ten seconds before it.
      for (let i = 0; i < WINDOW_SECONDS; i++) {
        const second = seconds[i] ?? -1;
        if (second < current && second >= current - WINDOW_SECONDS) total += counts[i] ?? 0;
      }
      set(total / WINDOW_SECONDS);
    });
  }

  const inc = (counter: Counter<string>, labels: Record<string, string>, value: number): void => {
    if (value > 0) counter.inc(labels, value);
  };
  return {
    observe(call) {
      tick(now());
      const model = modelLabel(call.model);
      const outcome = outcomeLabel(call.outcome);
      requests.inc({ model, provider: providerOf(call.model, call.provider), outcome });
      duration.observe({ model, outcome }, call.durationMs / 1000);
      inc(cost, { model }, call.costUsd);
      inc(tokens, { model, kind: 'prompt' }, call.promptTokens);
      inc(tokens, { model, kind: 'completion' }, call.completionTokens);
    },
  };
}
