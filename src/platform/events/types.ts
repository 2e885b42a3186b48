/**
 * The spec's `SystemEvent` ("Event Schema"), field names as the spec writes them. It is what the
 * outbox stores, what the relay publishes as a message's `data`, and what consumers receive.
 */
export interface SystemEvent<Payload extends object = Record<string, unknown>> {
  /** UUID (v7 when Blocks made it); also the bus message id, so brokers and inboxes deduplicate on it. */
  readonly event_id: string;
  /** Dot-separated tokens (`ai.route.decided`); the bus subject it is published on. */
  readonly event_type: string;
  readonly source_service: string;
  readonly target_services: readonly string[];
  readonly payload: Payload;
  /** ISO 8601 in UTC (`2024-05-01T12:00:00.000Z`): when the change happened. */
  readonly timestamp: string;
  readonly correlation_id: string;
  readonly version: string;
}

/** What a producer hands to `appendEvent`; omitted fields get the defaults listed. */
export interface NewSystemEvent<Payload extends object = Record<string, unknown>> {
  readonly event_type: string;
  readonly source_service: string;
  readonly payload: Payload;
  /** Default: the event's own id, starting a new correlation. */
  readonly correlation_id?: string | undefined;
  /** Default: none (anyone subscribed to the event type). */
  readonly target_services?: readonly string[] | undefined;
  /** Default: a new UUID v7. */
  readonly event_id?: string | undefined;
  /** Default: now. */
  readonly timestamp?: string | Date | undefined;
  /** Default: `'1.0'`. */
  readonly version?: string | undefined;
  /** W3C trace context of the request that caused the event; travels as the message's `traceparent` header. */
  readonly traceparent?: string | undefined;
  /** Bus ordering key. Default: `correlation_id`. Events sharing a key are published, and handled, in order. */
  readonly key?: string | undefined;
}

export const DEFAULT_EVENT_VERSION = '1.0';

/** Headers every relayed event carries. */
export const EVENT_HEADERS = {
  correlationId: 'x-correlation-id',
  traceparent: 'traceparent',
} as const;

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** True when `value` has every SystemEvent field with the right JSON type (a consumer's check on `delivery.data`). */
export function isSystemEvent(value: unknown): value is SystemEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.event_id === 'string' &&
    typeof event.event_type === 'string' &&
    typeof event.source_service === 'string' &&
    isStringArray(event.target_services) &&
    typeof event.payload === 'object' &&
    event.payload !== null &&
    !Array.isArray(event.payload) &&
    typeof event.timestamp === 'string' &&
    typeof event.correlation_id === 'string' &&
    typeof event.version === 'string'
  );
}
