import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/** Codes the event bus raises; each is listed in docs/errors.md. */
export const busErrors = defineErrors(import.meta.url, {
  BUS_INVALID_SUBJECT: { status: 400, title: 'Invalid bus subject or subject pattern' },
  BUS_INVALID_CONSUMER: { status: 400, title: 'Invalid bus consumer name' },
  BUS_INVALID_MESSAGE: { status: 400, title: 'Invalid bus message' },
  BUS_INVALID_OPTIONS: { status: 400, title: 'Invalid bus subscription or adapter options' },
  BUS_CONSUMER_CONFLICT: { status: 409, title: 'Consumer already exists with another subject' },
  BUS_CLOSED: { status: 503, title: 'The event bus is closed' },
});

export type BusErrorCode = keyof typeof busErrors;

/** A bus error with the status and code from the catalogue above. */
export const busError = (code: BusErrorCode, detail: string, extensions?: Record<string, unknown>, cause?: unknown): BlocksError =>
  new BlocksError(code, busErrors[code].status, detail, { cause, extensions: extensions ?? {} });

/** `BUS_CONSUMER_CONFLICT` for subscribing a durable consumer as ephemeral or the reverse. */
export const ephemeralConflict = (consumer: string, existingIsEphemeral: boolean): BlocksError =>
  busError(
    'BUS_CONSUMER_CONFLICT',
    `Consumer '${consumer}' exists as ${existingIsEphemeral ? 'an ephemeral' : 'a durable'} consumer; ` +
      `subscribe it as ${existingIsEphemeral ? 'ephemeral' : 'durable'} or use another consumer name.`,
    { consumer, existing_ephemeral: existingIsEphemeral },
  );
