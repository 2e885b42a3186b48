/** Percentiles of what was recorded within the window, by nearest rank. */
export interface PercentileSnapshot {
  /** Samples within the window that the percentiles are taken over. */
  readonly count: number;
  /** `p50`, `p95`… for each fraction asked (0.5 → `p50`, 0.999 → `p99.9`); NaN when `count` is 0. */
  readonly values: Readonly<Record<string, number>>;
  readonly min: number;
  readonly max: number;
}

export interface SlidingPercentiles {
  /** Records one sample; NaN and infinities are not samples and are left out. */
  record(value: number): void;
  /** @throws RangeError for a fraction outside (0, 1] */
  snapshot(fractions?: readonly number[]): PercentileSnapshot;
}

/**
 * p50/p95/p99 of the last `windowMs`, in process, in fixed memory: a ring of `capacity` samples
 * (1024 by default). Past `capacity` samples in one window the oldest are overwritten, so at a high
 * rate the percentiles are of the newest `capacity` samples: `count` says how many. A snapshot sorts
 * a copy (capacity log capacity), so ask at a reporting interval, not per request. Exact for the
 * samples it holds; for fleet-wide percentiles use the Prometheus histograms instead.
 */
export function createSlidingPercentiles(options: { windowMs: number; capacity?: number; now: () => number }): SlidingPercentiles {
  const capacity = options.capacity ?? 1024;
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer (got ${capacity})`);
  const values = new Float64Array(capacity);
  const times = new Float64Array(capacity);
  let next = 0;
  let size = 0;
  return {
    record(value) {
      if (!Number.isFinite(value)) return;
      values[next] = value;
      times[next] = options.now();
      next = (next + 1) % capacity;
      size = Math.min(size + 1, capacity);
    },
    snapshot(fractions = [0.5, 0.95, 0.99]) {
      for (const fraction of fractions) {
        if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`percentile fractions are in (0, 1] (got ${fraction})`);
      }
      const since = options.now() - options.windowMs;
      const recent: number[] = [];
      for (let i = 0; i < size; i++) if ((times[i] as number) > since) recent.push(values[i] as number);
      recent.sort((a, b) => a - b);
      const rank = (fraction: number): number =>
        recent.length === 0 ? Number.NaN : (recent[Math.ceil(fraction * recent.length) - 1] as number);
      return {
        count: recent.length,
        values: Object.fromEntries(fractions.map((fraction) => [`p${+(fraction * 100).toFixed(3)}`, rank(fraction)])),
        min: recent[0] ?? Number.NaN,
        max: recent.at(-1) ?? Number.NaN,
      };
    },
  };
}
