import { BlocksError } from '../../../platform/errors.ts';
import { defineErrors } from '../../../platform/define-errors.ts';

/** Codes a caller sees when its bearer token is refused. Listed in docs/errors.md. */
export const authErrors = defineErrors(import.meta.url, {
  INVALID_TOKEN: { status: 401, title: 'Token is not valid' },
  TOKEN_ISSUER_UNAVAILABLE: { status: 503, title: 'Token issuer could not be reached' },
});

export type AuthErrorCode = keyof typeof authErrors;

/** Why a token was refused; the detail names the check that failed, never key material or the token. */
export const invalidToken = (reason: string, cause?: unknown): BlocksError =>
  new BlocksError('INVALID_TOKEN', authErrors.INVALID_TOKEN.status, reason, { cause });

/**
 * Seconds a caller is told to wait (`Retry-After`) when an issuer's documents could not be fetched.
 * The next token fetches them again at once; a few seconds spare a struggling issuer a storm of retries.
 */
export const ISSUER_RETRY_AFTER_S = 5;

/** The issuer's discovery document or key set could not be had: the token is not at fault, so it is a 503 to retry, not a 401. */
export const issuerUnavailable = (issuer: string, cause?: unknown): BlocksError =>
  new BlocksError(
    'TOKEN_ISSUER_UNAVAILABLE',
    authErrors.TOKEN_ISSUER_UNAVAILABLE.status,
    `The keys of issuer ${issuer} could not be fetched; try again shortly`,
    { cause, extensions: { issuer, retry_after_s: ISSUER_RETRY_AFTER_S } },
  );
