import { randomUUID } from 'node:crypto';
import { busError } from './errors.ts';
import type { OutgoingMessage } from './port.ts';
import { assertSubject } from './subject-pattern.ts';

/**
 * Header names the adapters use for their own bookkeeping (`nats-*` is NATS' own namespace,
 * `x-bus-*` ours); a producer cannot set them, so they never collide with what we strip on delivery.
 */
const RESERVED_HEADER_PREFIXES = ['nats-', 'x-bus-'] as const;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_ID_LENGTH = 256;

/** An outgoing message checked and encoded once, before any adapter touches it. */
export interface PreparedMessage {
  readonly subject: string;
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** `data` as JSON text; `undefined` travels as `null`. */
  readonly payload: string;
}

const assertHeaderSafe = (what: string, value: string, subject: string): void => {
  if (value.length === 0 || value.length > MAX_ID_LENGTH || /[\r\n\0]/.test(value)) {
    throw busError('BUS_INVALID_MESSAGE', `Message ${what} must be 1-${MAX_ID_LENGTH} characters without line breaks.`, { subject });
  }
};

/**
 * Validates the subject, id, key and headers, serialises `data` and fills in a random id.
 * Throws `BUS_INVALID_SUBJECT` or `BUS_INVALID_MESSAGE` (data not JSON-serialisable, reserved
 * or malformed header, id/key with line breaks).
 */
export function prepareMessage(message: OutgoingMessage): PreparedMessage {
  assertSubject(message.subject);
  const { subject } = message;
  const id = message.id ?? randomUUID();
  assertHeaderSafe('id', id, subject);
  if (message.key !== undefined) assertHeaderSafe('key', message.key, subject);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name) || RESERVED_HEADER_PREFIXES.some((prefix) => lower.startsWith(prefix))) {
      throw busError('BUS_INVALID_MESSAGE', `Header name '${name}' is malformed or reserved (nats-*, x-bus-*).`, {
        subject,
      });
    }
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw busError('BUS_INVALID_MESSAGE', `Header '${name}' must be a string without line breaks.`, { subject });
    }
    headers[name] = value;
  }
  let payload: string | undefined;
  try {
    payload = JSON.stringify(message.data ?? null);
  } catch (error) {
    throw busError('BUS_INVALID_MESSAGE', `Message data for '${subject}' is not JSON-serialisable.`, { subject }, error);
  }
  if (payload === undefined) {
    throw busError('BUS_INVALID_MESSAGE', `Message data for '${subject}' is not JSON-serialisable.`, { subject });
  }
  return { subject, id, key: message.key, headers, payload };
}

/**
 * Parses a stored payload. Text that is not JSON (a message some other producer put on the
 * broker) is delivered as the string itself rather than failing the pull, so the handler's
 * retry and dead-letter policy decides what happens to it.
 */
export function decodePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
