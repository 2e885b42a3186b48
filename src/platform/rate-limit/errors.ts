import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/** Codes the rate limiter raises; each is listed in docs/errors.md. */
export const RATE_LIMIT_ERRORS = defineErrors(import.meta.url, {
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  RATE_LIMITER_UNAVAILABLE: { status: 503, title: 'The shared rate limiter (Redis) did not answer' },
});

/** The shared store did not answer within the limiter's bound; callers fail open or closed by policy. */
export class RateLimiterUnavailableError extends BlocksError {
  constructor(cause: unknown) {
    super('RATE_LIMITER_UNAVAILABLE', RATE_LIMIT_ERRORS.RATE_LIMITER_UNAVAILABLE.status, 'shared rate limiter did not answer in time', {
      cause,
    });
    this.name = 'RateLimiterUnavailableError';
  }
}
