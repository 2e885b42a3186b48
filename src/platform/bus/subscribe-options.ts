import { busError } from './errors.ts';
import type { SubscribeOptions } from './port.ts';
import { assertConsumerName, compileSubjectPattern, type SubjectMatcher } from './subject-pattern.ts';

/** Subscribe options with the port's defaults applied and every value checked. */
export interface ResolvedSubscribeOptions {
  readonly consumer: string;
  readonly subject: string;
  readonly matches: SubjectMatcher;
  readonly maxDeliver: number;
  readonly ackWaitMs: number;
  readonly concurrency: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly retainMs: number;
  readonly ephemeral: boolean;
}

export const SUBSCRIBE_DEFAULTS = {
  maxDeliver: 5,
  ackWaitMs: 30_000,
  concurrency: 16,
  retryDelayMs: 1_000,
  maxRetryDelayMs: 30_000,
  retainMs: 0,
} as const;

const checkInteger = (name: string, value: number, min: number, max: number): number => {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw busError('BUS_INVALID_OPTIONS', `${name} must be an integer from ${min} to ${max}, got ${String(value)}.`, {
      option: name,
    });
  }
  return value;
};

// Options may come from parsed configuration, where a string 'false' would read as true.
const checkBoolean = (name: string, value: unknown): boolean => {
  if (typeof value !== 'boolean') {
    throw busError('BUS_INVALID_OPTIONS', `${name} must be true or false, got ${JSON.stringify(value)}.`, { option: name });
  }
  return value;
};

/**
 * Applies defaults and validates: consumer name (`BUS_INVALID_CONSUMER`), subject pattern
 * (`BUS_INVALID_SUBJECT`), numeric options (`BUS_INVALID_OPTIONS`). ackWaitMs is at least
 * 100 ms because the dispatcher renews in-flight deliveries every quarter of it.
 */
export function resolveSubscribeOptions(options: SubscribeOptions): ResolvedSubscribeOptions {
  assertConsumerName(options.consumer);
  const matches = compileSubjectPattern(options.subject);
  return {
    consumer: options.consumer,
    subject: options.subject,
    matches,
    maxDeliver: checkInteger('maxDeliver', options.maxDeliver ?? SUBSCRIBE_DEFAULTS.maxDeliver, 1, 1_000),
    ackWaitMs: checkInteger('ackWaitMs', options.ackWaitMs ?? SUBSCRIBE_DEFAULTS.ackWaitMs, 100, 86_400_000),
    concurrency: checkInteger('concurrency', options.concurrency ?? SUBSCRIBE_DEFAULTS.concurrency, 1, 1_000),
    retryDelayMs: checkInteger('retryDelayMs', options.retryDelayMs ?? SUBSCRIBE_DEFAULTS.retryDelayMs, 0, 3_600_000),
    maxRetryDelayMs: checkInteger('maxRetryDelayMs', options.maxRetryDelayMs ?? SUBSCRIBE_DEFAULTS.maxRetryDelayMs, 0, 3_600_000),
    retainMs: checkInteger('retainMs', options.retainMs ?? SUBSCRIBE_DEFAULTS.retainMs, 0, Number.MAX_SAFE_INTEGER),
    ephemeral: checkBoolean('ephemeral', options.ephemeral ?? false),
  };
}

/** Default of the adapters' `ephemeralTimeoutMs`. */
export const DEFAULT_EPHEMERAL_TIMEOUT_MS = 30_000;

/**
 * How long an ephemeral consumer may go unseen before the broker removes it: the adapter's
 * setting, but never under two ack waits, so a live subscriber (which signs of life every
 * quarter of its ack wait) is not taken for a dead one.
 */
export const ephemeralTimeout = (options: ResolvedSubscribeOptions, ephemeralTimeoutMs: number): number =>
  Math.max(ephemeralTimeoutMs, options.ackWaitMs * 2);

/** Checks an adapter's `ephemeralTimeoutMs` (`BUS_INVALID_OPTIONS`) and applies its default. */
export const resolveEphemeralTimeout = (value: number | undefined): number =>
  checkInteger('ephemeralTimeoutMs', value ?? DEFAULT_EPHEMERAL_TIMEOUT_MS, 100, 86_400_000);
