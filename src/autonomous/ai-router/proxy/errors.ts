import { BlocksError } from '../../../platform/errors.ts';
import { defineErrors } from '../../../platform/define-errors.ts';

/**
 * Codes the OpenAI-compatible proxy (`/v1`) raises itself. Provider failures that survive every
 * fallback keep their `PROVIDER_*` code (providers/errors.ts); bad bodies are `VALIDATION_FAILED`.
 */
export const proxyErrors = defineErrors(import.meta.url, {
  UNKNOWN_MODEL: { status: 404, title: 'No such model or routing policy' },
  MODEL_NOT_ALLOWED: { status: 403, title: 'Model not allowed for this tenant' },
  MODEL_UNAVAILABLE: { status: 503, title: 'No deployment can take the call now' },
  INVALID_CACHE_TTL: { status: 400, title: 'Cache TTL is not valid' },
  CLIENT_CLOSED_REQUEST: { status: 499, title: 'Client went away before the answer' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'The call cannot be recorded now' },
});

export type ProxyErrorCode = keyof typeof proxyErrors;

export const unknownModel = (model: string, policies: readonly string[]): BlocksError =>
  new BlocksError(
    'UNKNOWN_MODEL',
    proxyErrors.UNKNOWN_MODEL.status,
    `Model '${model}' is not an enabled catalog model, a routing policy${policies.length > 0 ? ` (${policies.join(', ')})` : ''} or 'auto'; GET /v1/models lists them.`,
    { extensions: { model, param: 'model' } },
  );

export const modelNotAllowed = (model: string, tenant: string): BlocksError =>
  new BlocksError(
    'MODEL_NOT_ALLOWED',
    proxyErrors.MODEL_NOT_ALLOWED.status,
    `Tenant '${tenant}' may not use any deployment of '${model}' (ai.tenants.${tenant}: allowed providers or regions).`,
    { extensions: { model, tenant, param: 'model' } },
  );

/** Why a deployment was passed over without being called. */
export interface SkippedDeployment {
  readonly model: string;
  readonly deployment: string;
  readonly reason: string;
}

export const modelUnavailable = (skipped: readonly SkippedDeployment[], attempts: readonly unknown[]): BlocksError =>
  new BlocksError(
    'MODEL_UNAVAILABLE',
    proxyErrors.MODEL_UNAVAILABLE.status,
    `No deployment of the candidate models could be called: ${skipped
      .slice(0, 5)
      .map((s) => `${s.model}/${s.deployment} (${s.reason})`)
      .join(', ')}${skipped.length > 5 ? ', …' : ''}.`,
    { extensions: { skipped, attempts } },
  );

/**
 * Blocks' database cannot be written, so the call cannot be recorded nor charged: refused before any
 * provider is called or, when the database went away while the provider answered (`answered`), the
 * answer is withheld, since it is never given without its record.
 */
export const databaseUnavailable = (retryAfterS: number, answered = false): BlocksError =>
  new BlocksError(
    'DATABASE_UNAVAILABLE',
    proxyErrors.DATABASE_UNAVAILABLE.status,
    answered
      ? `Blocks' database went away while the provider answered and did not come back in time to record the call, so its answer is withheld. Retry after ${retryAfterS} s.`
      : `Blocks' database cannot be reached, so the call could not be recorded; no provider was called. Retry after ${retryAfterS} s.`,
    { extensions: { retry_after: retryAfterS } },
  );

export const invalidCacheTtl = (value: string): BlocksError =>
  new BlocksError(
    'INVALID_CACHE_TTL',
    proxyErrors.INVALID_CACHE_TTL.status,
    `Header x-blocks-cache-ttl must be a whole number of seconds (got '${value.slice(0, 40)}').`,
    { extensions: { header: 'x-blocks-cache-ttl' } },
  );

/**
 * OpenAI's error envelope for a problem, added to every /v1 problem document as `error` so that
 * OpenAI SDKs show the message: `type` follows OpenAI's families, `code` is ours (lowercase).
 */
export function openAiErrorOf(status: number, code: string, detail: string, param: unknown): Record<string, unknown> {
  const type =
    status === 429
      ? 'rate_limit_exceeded'
      : status === 401 || status === 403
        ? 'permission_error'
        : status === 404
          ? 'not_found_error'
          : status === 402
            ? 'insufficient_quota'
            : status < 500
              ? 'invalid_request_error'
              : 'api_error';
  return { message: detail, type, code: code.toLowerCase(), param: typeof param === 'string' ? param : null };
}

/** The client disconnected; the upstream call was aborted. Only events and logs see it. */
export const clientClosed = (): BlocksError =>
  new BlocksError('CLIENT_CLOSED_REQUEST', proxyErrors.CLIENT_CLOSED_REQUEST.status, 'The client closed the connection before the answer.');
