import type { EventBus } from '../bus/port.ts';
import { buildEvent } from '../events/outbox.ts';
import { EVENT_HEADERS } from '../events/types.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { BreakerRegistry, BreakerState, BreakerStateChange } from './breakers.ts';

/** The event a breaker's state change becomes. */
export const BREAKER_STATE_CHANGED = 'platform.breaker.state_changed';

/** Its payload. */
export interface BreakerStateChangedPayload {
  readonly name: string;
  readonly from: BreakerState;
  readonly to: BreakerState;
  /** `platform.instanceId` of the process that saw (for a shared breaker: made) the change. */
  readonly instance: string;
}

/** `blocks_breaker_state`'s values. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, 'half-open': 1, open: 2 };

/** Registers `blocks_breaker_state{breaker}`: 0 closed, 1 half-open, 2 open, read at every scrape. */
export function registerBreakerGauge(metrics: Pick<Metrics, 'gauge'>, breakers: Pick<BreakerRegistry, 'states'>): void {
  metrics.gauge('blocks_breaker_state', 'Circuit breaker state: 0 closed, 1 half-open, 2 open', ['breaker'], (set) => {
    for (const snapshot of breakers.states()) set(BREAKER_STATE_VALUE[snapshot.state], { breaker: snapshot.name });
  });
}

export interface BreakerEventsOptions {
  readonly bus: Pick<EventBus, 'publish'>;
  readonly instanceId: string;
  readonly logger?: Pick<Logger, 'warn'> | undefined;
}

/**
 * An `onStateChange` that publishes each change as a `platform.breaker.state_changed` event straight
 * to the bus, not through the outbox: a flapping breaker must not fill the events table, and a
 * change seen while the bus is down is worth less than the call it would hold up. A publish that
 * fails is logged and dropped; the breaker goes on. Events of one breaker share a key, so a
 * consumer sees them in order.
 */
export function publishBreakerChanges(options: BreakerEventsOptions): (change: BreakerStateChange) => void {
  return (change) => {
    const payload: BreakerStateChangedPayload = { name: change.name, from: change.from, to: change.to, instance: options.instanceId };
    const event = buildEvent({
      event_type: BREAKER_STATE_CHANGED,
      source_service: 'platform.resilience',
      payload,
      timestamp: new Date(change.at),
    });
    options.bus
      .publish({
        subject: BREAKER_STATE_CHANGED,
        id: event.event_id,
        key: `breaker:${change.name}`,
        data: event,
        headers: { [EVENT_HEADERS.correlationId]: event.correlation_id },
      })
      .catch((error: unknown) => options.logger?.warn({ err: error, ...payload }, 'breaker state change not published'));
  };
}
