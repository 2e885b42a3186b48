import type { Config } from './config/schema.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './telemetry/metrics.ts';
import type { Database } from './db/port.ts';
import type { EventBus } from './bus/port.ts';
import type { Cache } from './cache/port.ts';
import type { Clock } from './clock.ts';
import type { BreakerRegistry } from './resilience/breakers.ts';
import type { RateLimiter } from './rate-limit/port.ts';
import type { OutboxRelay } from './events/relay.ts';
import type { DependencyCheck } from './http/health.ts';
import type { IdempotencyStore } from './idempotency/store.ts';
import type { PlatformEgress } from './net/egress-policies.ts';
import type { Notifier } from './notify/port.ts';

/**
 * Everything a module needs from the infrastructure, passed in explicitly. A process builds one
 * with `openPlatform`; a test builds one with exactly the adapters it wants.
 */
export interface Platform {
  readonly config: Config;
  readonly version: string;
  /** Names this process (host name and a random suffix) in metrics (`blocks_instance_info`) and in the events it publishes. */
  readonly instanceId: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly db: Database;
  readonly bus: EventBus;
  readonly cache: Cache;
  /** Per-caller allowances, shared through Redis when the cache is. */
  readonly rateLimiter: RateLimiter;
  readonly breakers: BreakerRegistry;
  /** Publishes committed events; call `relay.notify()` after appending one so it goes out now. */
  readonly relay: OutboxRelay;
  /** What /health reports on. */
  readonly checks: readonly DependencyCheck[];
  /**
   * Which requests carrying an `Idempotency-Key` ran, and their answers (the HTTP layer's plugin
   * uses it; a route may store its answer in its own transaction with `complete(scope, answer, tx)`).
   */
  readonly idempotency: IdempotencyStore;
  /**
   * Where URLs that callers set may point (`egress`): every webhook, MCP server, deployment base
   * URL or workflow HTTP step a caller names is checked with it when written and fetched through
   * its dispatcher. A module gets its own (the platform's, or its section's override) as `context.egress`.
   */
  readonly egress: PlatformEgress;
  /** Sends notifications (email) as `notify` configures; refuses, never drops, when none is configured. */
  readonly notify: Notifier;
}
