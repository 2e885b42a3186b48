import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/** Codes this module raises; each is listed in docs/errors.md. */
export const RESILIENCE_ERRORS = defineErrors(import.meta.url, {
  CIRCUIT_OPEN: {
    status: 503,
    title: 'A dependency is failing and its circuit breaker is open',
  },
});

/**
 * Thrown without calling the protected function while the named breaker is open (or while its
 * single half-open trial call is in flight). Callers may branch on it to serve a fallback.
 */
export class CircuitOpenError extends BlocksError {
  readonly breaker: string;

  constructor(breaker: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super('CIRCUIT_OPEN', RESILIENCE_ERRORS.CIRCUIT_OPEN.status, `circuit breaker "${breaker}" is open`, {
      cause: options?.cause,
      extensions:
        options?.retryAfterMs === undefined
          ? { breaker }
          : {
              breaker,
              retry_after_ms: Math.max(0, Math.ceil(options.retryAfterMs)),
            },
    });
    this.name = 'CircuitOpenError';
    this.breaker = breaker;
  }
}

export const isCircuitOpenError = (error: unknown): error is CircuitOpenError => error instanceof CircuitOpenError;
