import { BlocksError } from '../platform/errors.ts';

/** Codes the gateway raises itself (a service's own codes pass through unchanged); each is listed in docs/errors.md. */
export const gatewayErrors = {
  UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream service did not answer' },
} as const;

export type GatewayErrorCode = keyof typeof gatewayErrors;

/** The service behind `upstream` (e.g. `autonomous`) refused the connection, reset it or timed out. */
export const upstreamUnavailable = (upstream: string, cause: Error): BlocksError =>
  new BlocksError(
    'UPSTREAM_UNAVAILABLE',
    gatewayErrors.UPSTREAM_UNAVAILABLE.status,
    `The ${upstream} service did not answer: ${cause.message}`,
    {
      cause,
      extensions: { upstream },
    },
  );
