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
}

export interface MetricsOptions {
  /** Longest a scrape waits for one gauge's read before it shows the last value. Default 250 ms. */
  readonly collectTimeoutMs?: number;
}

/**
 * One metrics registry per process (never prom-client's global one, so tests build their own).
 * Carries RED metrics per route, Node process and event-loop metrics, and whatever gauges the
 * platform's parts register.
 */
export function createMetrics(defaultLabels: Record<string, string> = {}, options: MetricsOptions = {}): Metrics {
  const collectTimeoutMs = options.collectTimeoutMs ?? 250;
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
