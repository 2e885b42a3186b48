import { BlocksError } from '../platform/errors.ts';
import { defineErrors } from '../platform/define-errors.ts';

/** Codes the gateway raises itself (a service's own codes pass through unchanged); each is listed in docs/errors.md. */
export const gatewayErrors = defineErrors(import.meta.url, {
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream service did not answer' },
  UPSTREAM_CIRCUIT_OPEN: { status: 503, title: 'Every member of the upstream service is failing' },
});

export type GatewayErrorCode = keyof typeof gatewayErrors;

/**
 * The service behind `upstream` (e.g. `autonomous`) refused the connection, reset it or timed
 * out, or none of its members is healthy (`cause` absent).
 */
export const upstreamUnavailable = (upstream: string, cause?: Error): BlocksError =>
  new BlocksError(
    'UPSTREAM_UNAVAILABLE',
    gatewayErrors.UPSTREAM_UNAVAILABLE.status,
    cause ? `The ${upstream} service did not answer: ${cause.message}` : `The ${upstream} service has no healthy member`,
    {
      cause,
      extensions: { upstream },
    },
  );

/** Every member's breaker is open: nothing is sent until the first one lets a trial through. */
export const upstreamCircuitOpen = (upstream: string, retryAfterMs: number): BlocksError =>
  new BlocksError(
    'UPSTREAM_CIRCUIT_OPEN',
    gatewayErrors.UPSTREAM_CIRCUIT_OPEN.status,
    `Every member of the ${upstream} service failed repeatedly; retry after ${Math.ceil(retryAfterMs / 1000)} s`,
    { extensions: { upstream, retry_after_ms: Math.ceil(retryAfterMs) } },
  );
