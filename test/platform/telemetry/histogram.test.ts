import { describe, expect, it } from 'vitest';
import { createMetrics, DEFAULT_LATENCY_BUCKETS } from '../../../src/platform/telemetry/metrics.ts';
import { createSlidingPercentiles } from '../../../src/platform/telemetry/sliding-percentiles.ts';
import { parseExposition } from '../../support/prometheus.ts';

const manualTime = () => {
  let ms = 1_000;
  return { now: () => ms, advance: (by: number) => (ms += by) };
};

const bucketsOf = async (metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}) => {
  const samples = parseExposition(await metrics.registry.metrics()).filter(
    (sample) => sample.name === `${name}_bucket` && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  return Object.fromEntries(samples.map((sample) => [sample.labels['le'], sample.value]));
};

describe('metrics.histogram', () => {
  it('observes into the default latency buckets, from 1 ms to 1 min', async () => {
    const metrics = createMetrics();
    const steps = metrics.histogram('blocks_step_seconds', 'Step durations', ['step']);
    steps.observe(0.004, { step: 'fetch' });
    steps.observe(7, { step: 'fetch' });
    const buckets = await bucketsOf(metrics, 'blocks_step_seconds', { step: 'fetch' });
    expect(new Set(Object.keys(buckets))).toEqual(new Set([...DEFAULT_LATENCY_BUCKETS.map(String), '+Inf']));
    expect(DEFAULT_LATENCY_BUCKETS[0]).toBe(0.001);
    expect(DEFAULT_LATENCY_BUCKETS.at(-1)).toBe(60);
    expect(buckets['0.0025']).toBe(0);
    expect(buckets['0.005']).toBe(1);
    expect(buckets['5']).toBe(1);
    expect(buckets['10']).toBe(2);
  });

  it('times work on the clock it is given, with its outcome, and rethrows a failure', async () => {
    const time = manualTime();
    const metrics = createMetrics({}, { now: time.now });
    const calls = metrics.histogram('blocks_call_seconds', 'Calls', ['target', 'outcome'], [0.1, 1, 10]);
    await expect(calls.time(async () => (time.advance(400), 'answer'), { target: 'a' })).resolves.toBe('answer');
    await expect(
      calls.time(
        async () => {
          time.advance(2_000);
          throw new Error('refused');
        },
        { target: 'a' },
      ),
    ).rejects.toThrow('refused');
    expect(await bucketsOf(metrics, 'blocks_call_seconds', { target: 'a', outcome: 'ok' })).toEqual({
      '0.1': 0,
      '1': 1,
      '10': 1,
      '+Inf': 1,
    });
    expect(await bucketsOf(metrics, 'blocks_call_seconds', { target: 'a', outcome: 'error' })).toEqual({
      '0.1': 0,
      '1': 0,
      '10': 1,
      '+Inf': 1,
    });

    const end = calls.startTimer({ target: 'b' });
    time.advance(50);
    expect(end({ outcome: 'ok' })).toBeCloseTo(0.05);
    expect(await bucketsOf(metrics, 'blocks_call_seconds', { target: 'b', outcome: 'ok' })).toMatchObject({ '0.1': 1 });
  });

  it('returns the same histogram for the same name, and refuses a clash or bad buckets', () => {
    const metrics = createMetrics();
    const first = metrics.histogram('blocks_same_seconds', 'Same', ['x']);
    expect(metrics.histogram('blocks_same_seconds', 'Same', ['x']).histogram).toBe(first.histogram);
    metrics.counter('blocks_taken_total', 'Taken', []);
    expect(() => metrics.histogram('blocks_taken_total', 'Clash', [])).toThrow(/already been registered/);
    expect(() => metrics.histogram('blocks_bad_seconds', 'Bad', [], [1, 0.5])).toThrow(/increasing/);
    expect(() => metrics.histogram('blocks_empty_seconds', 'Bad', [], [])).toThrow(/increasing/);
  });
});

describe('sliding percentiles', () => {
  it('gives nearest-rank p50/p95/p99 of what was recorded within the window', () => {
    const time = manualTime();
    const window = createSlidingPercentiles({ windowMs: 60_000, now: time.now });
    expect(window.snapshot()).toMatchObject({ count: 0, values: { p50: Number.NaN } });
    for (let value = 100; value >= 1; value--) window.record(value);
    window.record(Number.NaN);
    expect(window.snapshot([0.5, 0.95, 0.99, 1])).toEqual({
      count: 100,
      values: { p50: 50, p95: 95, p99: 99, p100: 100 },
      min: 1,
      max: 100,
    });
    expect(window.snapshot([0.999]).values).toEqual({ 'p99.9': 100 });
    expect(() => window.snapshot([0])).toThrow(RangeError);
    expect(() => window.snapshot([1.5])).toThrow(RangeError);
  });

  it('forgets samples older than the window', () => {
    const time = manualTime();
    const window = createSlidingPercentiles({ windowMs: 10_000, now: time.now });
    for (let i = 0; i < 10; i++) window.record(1_000);
    time.advance(6_000);
    for (let i = 0; i < 10; i++) window.record(10);
    expect(window.snapshot().values).toMatchObject({ p50: 10, p99: 1_000 });
    time.advance(5_000);
    expect(window.snapshot()).toMatchObject({ count: 10, values: { p50: 10, p99: 10 }, max: 10 });
    time.advance(10_000);
    expect(window.snapshot().count).toBe(0);
  });

  it('keeps the newest capacity samples in fixed memory', () => {
    const time = manualTime();
    const window = createSlidingPercentiles({ windowMs: 60_000, capacity: 4, now: time.now });
    for (const value of [900, 800, 1, 2, 3, 4]) window.record(value);
    expect(window.snapshot([1])).toEqual({ count: 4, values: { p100: 4 }, min: 1, max: 4 });
    expect(() => createSlidingPercentiles({ windowMs: 1, capacity: 0, now: time.now })).toThrow(RangeError);
  });
});
