import autocannon from 'autocannon';

export interface LoadTarget {
  readonly label: string;
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: string;
  /** A fresh body for every request, when repeating one body would flatter a cache. */
  readonly makeBody?: () => string;
  readonly headers?: Record<string, string>;
}

export interface LoadResult {
  readonly label: string;
  readonly rps: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Connection errors and timeouts. */
  readonly errors: number;
  /** Answers other than 2xx. */
  readonly non2xx: number;
  readonly requests: number;
}

const percentile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/**
 * Loads one target with autocannon for a fixed time and returns throughput and latency
 * percentiles computed from every response (autocannon's own summary has no p95).
 */
export function runLoad(target: LoadTarget, options: { seconds: number; connections: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const instance = autocannon(
      {
        url: target.url,
        method: target.method ?? 'GET',
        body: target.body,
        headers: target.headers,
        connections: options.connections,
        duration: options.seconds,
        ...(target.makeBody === undefined
          ? {}
          : { requests: [{ setupRequest: (request: object) => ({ ...request, body: (target.makeBody as () => string)() }) }] }),
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const sorted = Float64Array.from(latencies).sort();
        resolve({
          label: target.label,
          rps: result.requests.total / options.seconds,
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          p99: percentile(sorted, 99),
          errors: result.errors + result.timeouts,
          non2xx: result.non2xx,
          requests: result.requests.total,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
  });
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Median of each figure over several rounds of one target. */
export function medianOf(results: readonly LoadResult[]): LoadResult {
  const first = results[0];
  if (!first) throw new Error('no rounds');
  const pick = (key: keyof Omit<LoadResult, 'label'>) => median(results.map((r) => r[key]));
  return {
    label: first.label,
    rps: pick('rps'),
    p50: pick('p50'),
    p95: pick('p95'),
    p99: pick('p99'),
    errors: results.reduce((sum, r) => sum + r.errors, 0),
    non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
    requests: results.reduce((sum, r) => sum + r.requests, 0),
  };
}

export function formatTable(rows: readonly LoadResult[]): string {
  const header = ['target', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'non-2xx', 'requests'];
  const body = rows.map((r) => [
    r.label,
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p95.toFixed(2),
    r.p99.toFixed(2),
    String(r.errors),
    String(r.non2xx),
    String(r.requests),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}
