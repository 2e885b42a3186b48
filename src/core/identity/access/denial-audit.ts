import type { Database } from '../../../platform/db/port.ts';
import { appendEvents, type NewSystemEvent } from '../../../platform/events/index.ts';
import type { AccessDenial } from '../../../platform/http/access.ts';
import type { Logger } from '../../../platform/logger.ts';
import type { Metrics } from '../../../platform/telemetry/metrics.ts';

/** The audit event of every refused request. */
export const ACCESS_DENIED_EVENT = 'security.access.denied';

export interface DenialAudit {
  /** Queues the denial; written with others within `flushEveryMs`. Never blocks the request. */
  record(denial: AccessDenial): void;
  /** Writes what is queued (also on the timer and at stop). */
  flush(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface DenialAuditOptions {
  readonly db: Database;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly onEventAppended: () => void;
  readonly flushEveryMs?: number;
  /** Denials held in memory at most; past it, new ones are counted as dropped rather than queued. */
  readonly maxQueued?: number;
}

/**
 * Audit events for refused requests, batched into one insert per flush. A flood of bad requests
 * must not become a flood of transactions, and must not grow memory without bound: the queue is
 * capped, and what does not fit is counted on `/metrics` (the request is refused all the same).
 */
export function createDenialAudit(options: DenialAuditOptions): DenialAudit {
  const maxQueued = options.maxQueued ?? 5_000;
  const dropped = options.metrics.counter(
    'blocks_audit_events_dropped_total',
    'Denial audit events not written because the queue was full or the database failed',
    [],
  );
  let queue: AccessDenial[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  const write = async (batch: AccessDenial[]): Promise<void> => {
    const events: NewSystemEvent[] = batch.map((denial) => ({
      event_type: ACCESS_DENIED_EVENT,
      source_service: 'core.identity',
      correlation_id: denial.correlationId,
      traceparent: denial.traceparent,
      key: `security-${denial.tenant ?? 'anonymous'}`,
      payload: {
        tenant: denial.tenant,
        subject: denial.subject,
        reason: denial.reason,
        status: denial.status,
        ip: denial.ip,
        method: denial.method,
        route: denial.route,
      },
    }));
    try {
      await options.db.transaction((tx) => appendEvents(tx, events));
      options.onEventAppended();
    } catch (error) {
      dropped.inc(batch.length);
      options.logger.error({ err: error, count: batch.length }, 'could not write denial audit events');
    }
  };

  const flush = (): Promise<void> => {
    flushing = flushing.then(async () => {
      while (queue.length > 0) {
        const batch = queue.slice(0, 500);
        queue = queue.slice(batch.length);
        await write(batch);
      }
    });
    return flushing;
  };

  return {
    record(denial) {
      if (queue.length >= maxQueued) {
        dropped.inc();
        return;
      }
      queue.push(denial);
    },
    flush,
    start() {
      timer = setInterval(() => void flush(), options.flushEveryMs ?? 250);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await flush();
    },
  };
}
