import { describe, expect, it } from 'vitest';
import { loadModelCatalog, type ModelCatalog } from '../../../../src/autonomous/ai-router/catalog.ts';
import { createProxyMetrics } from '../../../../src/autonomous/ai-router/proxy/proxy-metrics.ts';
import { createMetrics } from '../../../../src/platform/telemetry/metrics.ts';
import { parseExposition, seriesOf } from '../../../support/prometheus.ts';

const catalog: ModelCatalog = loadModelCatalog(
  [
    {
      provider: 'openai',
      model: 'alpha',
      task_types: ['chat'],
      context_window: 8000,
      input_price_per_mtok: 1,
      output_price_per_mtok: 2,
      quality: { chat: { low: 0.9, medium: 0.9, high: 0.9 } },
    },
  ],
  { providers: ['openai', 'anthropic'] },
);

const call = (model: string, provider = 'openai', outcome = 'success') => ({
  model,
  provider,
  outcome,
  durationMs: 120,
  costUsd: 0.001,
  promptTokens: 10,
  completionTokens: 5,
});

describe('proxy metrics', () => {
  it('labels catalog models by name and every other name `unknown`, so callers cannot add series', async () => {
    const metrics = createMetrics();
    const proxy = createProxyMetrics(metrics, { catalog: () => catalog });
    proxy.observe(call('alpha'));
    proxy.observe(call('nobody-knows', 'none', 'UNKNOWN_MODEL'));
    const before = new Set(parseExposition(await metrics.registry.metrics()).map(seriesOf));
    for (let i = 0; i < 500; i++) proxy.observe(call(`random-${i}\u0000\n"}`, 'none', 'UNKNOWN_MODEL'));
    const samples = parseExposition(await metrics.registry.metrics());
    expect(new Set(samples.map(seriesOf))).toEqual(before);
    const requests = samples.filter((s) => s.name === 'blocks_ai_requests_total');
    expect(requests.map((s) => s.labels)).toEqual([
      { model: 'alpha', provider: 'openai', outcome: 'success' },
      { model: 'unknown', provider: 'none', outcome: 'UNKNOWN_MODEL' },
    ]);
    expect(requests.find((s) => s.labels['model'] === 'unknown')?.value).toBe(501);
  });

  it('labels a provider that serves no deployment of the model, or an outcome that is not a code, as such', async () => {
    const metrics = createMetrics();
    const proxy = createProxyMetrics(metrics, { catalog: () => catalog });
    proxy.observe(call('alpha', 'anthropic'));
    proxy.observe(call('alpha', 'openai', 'not a code\u0000'));
    const labels = parseExposition(await metrics.registry.metrics())
      .filter((s) => s.name === 'blocks_ai_requests_total')
      .map((s) => s.labels);
    expect(labels).toEqual([
      { model: 'alpha', provider: 'unknown', outcome: 'success' },
      { model: 'alpha', provider: 'openai', outcome: 'other' },
    ]);
  });

  it('counts every model `unknown` while no catalog is loaded', async () => {
    const metrics = createMetrics();
    createProxyMetrics(metrics, { catalog: () => null }).observe(call('alpha'));
    const models = parseExposition(await metrics.registry.metrics())
      .filter((s) => s.name.startsWith('blocks_ai_') && s.labels['model'] !== undefined)
      .map((s) => s.labels['model']);
    expect(new Set(models)).toEqual(new Set(['unknown']));
  });
});
