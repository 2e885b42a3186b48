import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from './config/schema.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './telemetry/metrics.ts';
import { createSystemClock } from './clock.ts';
import { openDatabase } from './db/open.ts';
import { runMigrations, type MigrationSource } from './db/migrate.ts';
import type { Database } from './db/port.ts';
import type { EventBus } from './bus/port.ts';
import type { BusErrorListener } from './bus/dispatcher.ts';
import type { Cache } from './cache/port.ts';
import { createMemoryBus } from './bus/memory.ts';
import { createNatsBus } from './bus/nats.ts';
import { createRedisBus } from './bus/redis.ts';
import { createMemoryCache } from './cache/memory.ts';
import { createRedisCache } from './cache/redis.ts';
import { createBreakerRegistry } from './resilience/breakers.ts';
import { createRedisBreakerStore } from './resilience/shared-breaker-store.ts';
import { publishBreakerChanges, registerBreakerGauge } from './resilience/breaker-telemetry.ts';
import { createMemoryRateLimiter } from './rate-limit/memory.ts';
import { createRedisRateLimiter } from './rate-limit/redis.ts';
import type { RateLimiter } from './rate-limit/port.ts';
import { createOutboxRelay } from './events/relay.ts';
import { createRetentionJob } from './events/retention.ts';
import { createIdempotencyStore } from './idempotency/store.ts';
import type { DependencyCheck } from './http/health.ts';
import type { Platform } from './platform.ts';
import { createPlatformEgress } from './net/egress-policies.ts';
import { openNotifier } from './notify/open.ts';
import { createConfiguredSecretResolver } from './secrets/index.ts';

export interface OpenPlatformOptions {
  readonly config: Config;
  readonly version: string;
  /** Process name on log lines and metrics. */
  readonly service: string;
  readonly logger?: Logger | undefined;
  /** Names this process in metrics and events; default: the host name and a short random suffix. */
  readonly instanceId?: string | undefined;
  /** Every registered module's migrations, in the registry's order (`registry.migrations`). */
  readonly migrations: readonly MigrationSource[];
}

export interface OpenedPlatform extends Platform {
  /** Stops the relay and flushes it for a bounded time, then closes bus, cache and database. */
  close(): Promise<void>;
}

function openDatabaseFor(config: Config, logger?: Logger): Promise<Database> {
  return openDatabase({
    url: config.database.url,
    dataDir: join(resolve(config.data_dir), 'pglite'),
    poolMax: config.database.pool_max,
    logger,
  });
}

/** The host name (a pod's, in Kubernetes) and a short random suffix: two processes on one host stay apart, and a restart is a new instance. */
const createInstanceId = (): string => `${hostname()}-${randomBytes(3).toString('hex')}`;

/** Longest a stopping process spends publishing its outbox before it closes the bus. */
const SHUTDOWN_FLUSH_MAX_MS = 2_000;

/** Applies pending migrations to the configured database (`blocks migrate`); returns them as `module/NNNN_name`. */
export async function migrateDatabase(config: Config, migrations: readonly MigrationSource[]): Promise<string[]> {
  const db = await openDatabaseFor(config);
  try {
    return (await runMigrations(db, migrations)).map((m) => `${m.module}/${String(m.version).padStart(4, '0')}_${m.name}`);
  } finally {
    await db.close();
  }
}

/** Opens the configured database, applies pending migrations, runs `work` on it and closes it (one-shot commands). */
export async function withDatabase<T>(
  config: Config,
  migrations: readonly MigrationSource[],
  work: (db: Database) => Promise<T>,
): Promise<T> {
  const db = await openDatabaseFor(config);
  try {
    await runMigrations(db, migrations);
    return await work(db);
  } finally {
    await db.close();
  }
}

/** The bus the configuration asks for; `auto` picks NATS when NATS_URL is set, else the in-process bus. */
export function busKindOf(config: Config): EventBus['kind'] {
  if (config.bus.kind !== 'auto') return config.bus.kind;
  return config.bus.nats_url ? 'nats' : 'memory';
}

const busErrorLogger =
  (logger: Logger): BusErrorListener =>
  (error, context) =>
    logger.warn({ err: error, ...context }, 'bus error');

async function openBus(config: Config, logger: Logger, db: Database): Promise<EventBus> {
  const kind = busKindOf(config);
  const { stream, subject_prefix: subjectPrefix } = config.bus;
  if (kind === 'nats') {
    if (!config.bus.nats_url) throw new Error('bus.kind is nats but no NATS_URL / bus.nats_url is set');
    return createNatsBus({
      url: config.bus.nats_url,
      stream,
      subjectPrefix,
      name: 'blocks',
      maxAgeMs: config.bus.max_age,
      maxBytes: config.bus.max_bytes,
      dedupWindowMs: config.bus.duplicate_window,
      onError: busErrorLogger(logger),
    });
  }
  if (kind === 'redis') {
    if (!config.bus.redis_url) throw new Error('bus.kind is redis but no REDIS_URL / bus.redis_url is set');
    // Redis Streams trim by age or count, not size: bus.max_bytes is NATS's only.
    return createRedisBus({
      url: config.bus.redis_url,
      streamKey: `${subjectPrefix}:${stream}`,
      maxAgeMs: config.bus.max_age,
      dedupWindowMs: config.bus.duplicate_window,
      onError: busErrorLogger(logger),
    });
  }
  // On PGlite (one process owns its data) the in-process bus keeps durable consumers' messages in
  // the database, so a killed process loses none; on a shared PostgreSQL it stays memory only.
  // Its messages are kept as long as the events they carry (retention.events), as a broker's max age would.
  return createMemoryBus({
    onError: busErrorLogger(logger),
    ...(db.kind === 'pglite' ? { db, maxAgeMs: config.retention.events } : {}),
  });
}

function openCache(config: Config, bus: EventBus, logger: Logger): Promise<Cache> | Cache {
  const { cache } = config;
  if (cache.redis_url) {
    return createRedisCache({
      url: cache.redis_url,
      keyPrefix: cache.key_prefix,
      maxL1Entries: cache.l1_max_entries,
      l1TtlMs: cache.l1_ttl,
      defaultTtlMs: cache.default_ttl,
      bus,
      logger,
    });
  }
  return createMemoryCache({ maxEntries: cache.l1_max_entries, defaultTtlMs: cache.default_ttl });
}

/** Shared through Redis whenever the cache is, so every replica draws from one allowance. */
function openRateLimiter(config: Config): RateLimiter {
  const url = config.cache.redis_url;
  if (!url) return createMemoryRateLimiter();
  return createRedisRateLimiter({ url, keyPrefix: `${config.cache.key_prefix}rl:`, timeoutMs: config.rate_limits.store_timeout });
}

/**
 * The bus as modules see it: subscriptions get the configured `max_deliver`, `ack_wait` and
 * `max_retry_delay` unless they set their own, retry a database outage for as long as events are
 * retained (`retention.events`), and each consumer is noted so /metrics can report its lag.
 */
function withPlatformDefaults(bus: EventBus, config: Config, consumers: Set<string>): EventBus {
  return {
    kind: bus.kind,
    publish: (message) => bus.publish(message),
    ...(bus.publishBatch === undefined ? {} : { publishBatch: bus.publishBatch.bind(bus) }),
    subscribe: (options, handler) => {
      consumers.add(options.consumer);
      const defaults = {
        maxDeliver: config.bus.max_deliver,
        ackWaitMs: config.bus.ack_wait,
        maxRetryDelayMs: config.bus.max_retry_delay,
        retainMs: config.retention.events,
      };
      return bus.subscribe({ ...defaults, ...options }, handler);
    },
    lag: (consumer) => bus.lag(consumer),
    ping: () => bus.ping(),
    close: () => bus.close(),
  };
}

/**
 * Opens every adapter the configuration names, runs migrations, and registers the platform's
 * gauges and health checks. If any step fails, what was opened is closed again.
 */
export async function openPlatform(options: OpenPlatformOptions): Promise<OpenedPlatform> {
  const { config, version } = options;
  const logger = options.logger ?? createLogger({ level: config.log.level, service: options.service, version });
  const metrics = createMetrics({ service: options.service });
  const instanceId = options.instanceId ?? createInstanceId();
  metrics.gauge(
    'blocks_instance_info',
    'Always 1: names this process (instance_id, as in its events) and its version',
    ['instance_id', 'version'],
    (set) => set(1, { instance_id: instanceId, version }),
  );
  const clock = createSystemClock();
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch((error: unknown) => logger.error({ err: error }, 'close failed'));
  };
  try {
    // Checked before anything opens: a bad `egress.allow` entry or `notify` setting stops the start here.
    const egress = createPlatformEgress(config.egress);
    closers.push(() => egress.close());
    const notify = openNotifier(config.notify, createConfiguredSecretResolver(config, process.env));
    closers.push(() => notify.close());
    const db = await openDatabaseFor(config, logger);
    closers.push(() => db.close());
    await runMigrations(db, options.migrations, { logger });
    const consumers = new Set<string>();
    const bus = withPlatformDefaults(await openBus(config, logger, db), config, consumers);
    closers.push(() => bus.close());
    const cache = await openCache(config, bus, logger);
    closers.push(() => cache.close());
    const rateLimiter = openRateLimiter(config);
    closers.push(() => rateLimiter.close());
    // Shared breakers keep their state where the rate limiter keeps its allowances: in Redis when
    // the cache is. Without Redis they are each process' own (on PGlite there is only one process).
    const breakerStore = config.cache.redis_url
      ? createRedisBreakerStore({ url: config.cache.redis_url, keyPrefix: `${config.cache.key_prefix}breaker:` })
      : undefined;
    if (breakerStore !== undefined) closers.push(() => breakerStore.close());
    const breakers = createBreakerRegistry({
      failureThreshold: config.resilience.failure_threshold,
      recoveryTimeoutMs: config.resilience.recovery_timeout,
      clock,
      onStateChange: publishBreakerChanges({ bus, instanceId, logger }),
      sharedStore: breakerStore,
      onSharedStoreError: (error, breaker) => logger.warn({ err: error, breaker }, 'shared breaker store unreachable; deciding locally'),
    });
    registerBreakerGauge(metrics, breakers);
    const deadLetters = metrics.counter(
      'blocks_outbox_dead_letters_total',
      'Events moved to outbox_dead_letters after the bus refused them outbox.max_attempts times',
      ['event_type'],
    );
    const relay = createOutboxRelay({
      db,
      bus,
      logger,
      pollIntervalMs: config.outbox.poll_interval,
      batchSize: config.outbox.batch_size,
      maxAttempts: config.outbox.max_attempts,
      onDeadLetter: (event) => deadLetters.inc({ event_type: event.event_type }),
      clock,
    });
    closers.push(async () => {
      await relay.stop();
      // What is left stays in the outbox: another replica's relay, or the next start, publishes it.
      // A shared outbox's backlog is every replica's, so a stopping one gives it a bounded share of its timeout.
      await relay.flush({ withinMs: Math.min(config.http.shutdown_timeout / 4, SHUTDOWN_FLUSH_MAX_MS) });
    });
    const retention = createRetentionJob({
      db,
      policy: { eventsMs: config.retention.events, inboxMs: config.retention.inbox },
      intervalMs: config.retention.interval,
      logger,
    });
    retention.start();
    closers.push(async () => retention.stop());

    metrics.gauge('blocks_outbox_backlog', 'Events committed but not yet published to the bus', [], async (set) =>
      set(await relay.backlog()),
    );
    metrics.gauge(
      'blocks_bus_consumer_lag',
      'Messages not yet acked, per durable consumer this process runs',
      ['consumer'],
      async (set) => {
        for (const consumer of consumers) set(await bus.lag(consumer), { consumer });
      },
    );
    metrics.gauge('blocks_db_pool_connections', 'Database connections by state', ['state'], (set) => {
      const stats = db.poolStats();
      set(stats.total, { state: 'total' });
      set(stats.idle, { state: 'idle' });
      set(stats.waiting, { state: 'waiting' });
    });

    const checks: DependencyCheck[] = [
      { name: `database (${db.kind})`, required: true, check: () => db.ping() },
      { name: `bus (${bus.kind})`, required: true, check: () => bus.ping() },
      // Reads fall back to misses while Redis is down, so the process can still serve: not required.
      { name: `cache (${cache.kind})`, required: false, check: () => cache.ping() },
    ];

    const platform: OpenedPlatform = {
      config,
      version,
      instanceId,
      logger,
      metrics,
      clock,
      db,
      bus,
      cache,
      rateLimiter,
      breakers,
      relay,
      checks,
      // Keys live in the database, so every replica shares them.
      idempotency: createIdempotencyStore({ db, clock, windowMs: config.idempotency.window }),
      egress,
      notify,
      close: closeAll,
    };
    return platform;
  } catch (error) {
    await closeAll();
    throw error;
  }
}
