import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status_code'>;
  readonly httpErrors: Counter<'method' | 'route' | 'status_code'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  /**
   * Registers a gauge whose value is read when /metrics is scraped. `collect` may be async
   * (a query for the outbox backlog, a broker call for consumer lag); a failing read leaves the
   * previous value rather than failing the scrape, and so does a slow one: the scrape waits for
   * it at most `collectTimeoutMs`, and the read goes on in the background, its values shown by
   * the next scrape. One read per gauge runs at a time, so a dependency that hangs is not asked
   * again at every scrape.
   */
  gauge(
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: (set: (value: number, labels?: Record<string, string>) => void) => Promise<void> | void,
  ): void;
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  /**
   * A histogram of durations in seconds (or of anything else, given its own `buckets`); asked again
   * under the same name, the same one. {@link DEFAULT_LATENCY_BUCKETS} when `buckets` is absent.
   * @throws Error when `name` is taken by a metric of another kind or `buckets` are not increasing
   */
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: readonly number[]): TimedHistogram<L>;
}

/** Seconds, from 1 ms to 1 min: an in-process call, a database query, a provider's answer, a workflow step. */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface TimedHistogram<L extends string> {
  readonly histogram: Histogram<L>;
  observe(value: number, labels?: Partial<Record<L, string>>): void;
  /**
   * Starts timing now; the function it returns observes the seconds elapsed (labels given at the
   * start and at the end together) and returns them.
   */
  startTimer(labels?: Partial<Record<L, string>>): (labels?: Partial<Record<L, string>>) => number;
  /**
   * Runs `work` and observes how long it took, whether it returned or threw: `outcome` set to
   * `ok` or `error` when the histogram has that label.
   */
  time<T>(work: () => Promise<T> | T, labels?: Partial<Record<L, string>>): Promise<T>;
}

export interface MetricsOptions {
  /** Longest a scrape waits for one gauge's read before it shows the last value. Default 250 ms. */
  readonly collectTimeoutMs?: number;
  /** Milliseconds from a monotonic clock, for histogram timers; `performance.now` by default (tests give their own). */
  readonly now?: () => number;
}

/**
 * One metrics registry per process (never prom-client's global one, so tests build their own).
 * Carries RED metrics per route, Node process and event-loop metrics, and whatever gauges the
 * platform's parts register.
 */
export function createMetrics(defaultLabels: Record<string, string> = {}, options: MetricsOptions = {}): Metrics {
  const collectTimeoutMs = options.collectTimeoutMs ?? 250;
  const now = options.now ?? (() => performance.now());
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const labelNames = ['method', 'route', 'status_code'] as const;
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames,
      registers: [registry],
    }),
    httpErrors: new Counter({
      name: 'http_request_errors_total',
      help: 'HTTP requests answered with a 5xx, by route',
      labelNames,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response sent',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    gauge(name, help, gaugeLabels, collect) {
      let reading: Promise<void> | undefined;
      new Gauge({
        name,
        help,
        labelNames: gaugeLabels,
        registers: [registry],
        async collect() {
          reading ??= (async () => {
            try {
              await collect((value, labels) => (labels ? this.set(labels, value) : this.set(value)));
            } catch {
              // A dependency that cannot answer keeps its last reading; /health reports the outage.
            }
          })().finally(() => {
            reading = undefined;
          });
          await atMost(reading, collectTimeoutMs);
        },
      });
    },
    counter(name, help, counterLabels) {
      const existing = registry.getSingleMetric(name);
      // A metric of another kind under this name falls through: the registry then refuses the duplicate.
      if (existing instanceof Counter) return existing;
      return new Counter({ name, help, labelNames: counterLabels, registers: [registry] });
    },
    histogram(name, help, histogramLabels, buckets = DEFAULT_LATENCY_BUCKETS) {
      const existing = registry.getSingleMetric(name);
      const histogram =
        existing instanceof Histogram
          ? (existing as Histogram<(typeof histogramLabels)[number]>)
          : new Histogram({ name, help, labelNames: histogramLabels, buckets: increasing(name, buckets), registers: [registry] });
      return timedHistogram(histogram, histogramLabels, now);
    },
  };
}

function increasing(name: string, buckets: readonly number[]): number[] {
  if (buckets.length === 0 || buckets.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= (buckets[i - 1] as number))))
    throw new Error(`histogram ${name}: buckets must be finite and increasing (got ${buckets.join(', ')})`);
  return [...buckets];
}

function timedHistogram<L extends string>(histogram: Histogram<L>, labelNames: readonly L[], now: () => number): TimedHistogram<L> {
  const observe = (value: number, labels?: Partial<Record<L, string>>): void => {
    if (labels === undefined) histogram.observe(value);
    else histogram.observe(labels, value);
  };
  const startTimer = (startLabels?: Partial<Record<L, string>>) => {
    const started = now();
    return (endLabels?: Partial<Record<L, string>>): number => {
      const seconds = Math.max(0, now() - started) / 1000;
      const labels = startLabels === undefined && endLabels === undefined ? undefined : { ...startLabels, ...endLabels };
      observe(seconds, labels);
      return seconds;
    };
  };
  const hasOutcome = (labelNames as readonly string[]).includes('outcome');
  const outcome = (value: 'ok' | 'error'): Partial<Record<L, string>> | undefined =>
    hasOutcome ? ({ outcome: value } as Partial<Record<L, string>>) : undefined;
  return {
    histogram,
    observe,
    startTimer,
    async time(work, labels) {
      const end = startTimer(labels);
      try {
        const value = await work();
        end(outcome('ok'));
        return value;
      } catch (error) {
        end(outcome('error'));
        throw error;
      }
    },
  };
}

/** Waits for `work` at most `ms`; the work itself goes on. */
async function atMost(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  try {
    await Promise.race([work, elapsed]);
  } finally {
    clearTimeout(timer);
  }
}
