import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/** Codes the idempotency layer answers with, on any route that takes `Idempotency-Key`; each is listed in docs/errors.md. */
export const idempotencyErrors = defineErrors(import.meta.url, {
  IDEMPOTENCY_KEY_INVALID: { status: 400, title: 'Idempotency-Key is not valid' },
  IDEMPOTENCY_KEY_IN_USE: { status: 409, title: 'A request with this Idempotency-Key is still running' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key was used for another request' },
  IDEMPOTENT_ANSWER_NOT_KEPT: { status: 410, title: 'The request with this Idempotency-Key completed; its answer was not kept' },
});

export type IdempotencyErrorCode = keyof typeof idempotencyErrors;

/** The header is empty, longer than {@link MAX_KEY_LENGTH} characters or holds characters outside printable ASCII. */
export const idempotencyKeyInvalid = (maxLength: number): BlocksError =>
  new BlocksError(
    'IDEMPOTENCY_KEY_INVALID',
    idempotencyErrors.IDEMPOTENCY_KEY_INVALID.status,
    `Idempotency-Key must be 1 to ${maxLength} printable ASCII characters`,
  );

/** The first request with this key has not answered yet (or its process died before it did). */
export const idempotencyKeyInUse = (retryAfterS: number): BlocksError =>
  new BlocksError(
    'IDEMPOTENCY_KEY_IN_USE',
    idempotencyErrors.IDEMPOTENCY_KEY_IN_USE.status,
    'A request with this Idempotency-Key has not finished; retry later to receive its answer',
    { extensions: { retry_after_s: retryAfterS } },
  );

/** The key was first sent with another method, URL or body. */
export const idempotencyKeyReused = (): BlocksError =>
  new BlocksError(
    'IDEMPOTENCY_KEY_REUSED',
    idempotencyErrors.IDEMPOTENCY_KEY_REUSED.status,
    'This Idempotency-Key was first used for a request with another method, URL or body; use a new key',
  );

/** The first request completed with `status`, but its answer held a secret (`Cache-Control: no-store`), which is never stored. */
export const idempotentAnswerNotKept = (status: number): BlocksError =>
  new BlocksError(
    'IDEMPOTENT_ANSWER_NOT_KEPT',
    idempotencyErrors.IDEMPOTENT_ANSWER_NOT_KEPT.status,
    `The request with this Idempotency-Key completed with ${status}; its answer held a secret and was not kept, so it cannot be sent again`,
    { extensions: { original_status: status } },
  );
