import { defineErrors } from '../define-errors.ts';
/**
 * Codes the HTTP kernel itself answers with, whatever module the route belongs to: malformed
 * requests, unknown routes and the catch-all for unexpected failures. Each is listed in
 * docs/errors.md.
 */
export const httpErrors = defineErrors(import.meta.url, {
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  VALIDATION_FAILED: { status: 400, title: 'Request does not match the route schema' },
  MALFORMED_JSON: { status: 400, title: 'Body is not valid JSON' },
  JSON_TOO_DEEP: { status: 400, title: 'JSON body nests too deeply' },
  EMPTY_BODY: { status: 400, title: 'JSON body is empty' },
  INVALID_CONTENT_LENGTH: { status: 400, title: 'Body size does not match Content-Length' },
  BAD_URL: { status: 400, title: 'URL is not valid' },
  INVALID_CURSOR: { status: 400, title: 'Invalid cursor' },
  AUTHENTICATION_REQUIRED: { status: 401, title: 'Credential required' },
  INVALID_CREDENTIALS: { status: 401, title: 'Credential is not valid' },
  TENANT_MISMATCH: { status: 403, title: 'Tenant header names another tenant' },
  ACCESS_DENIED: { status: 403, title: "Refused by the tenant's access rules" },
  INSUFFICIENT_SCOPE: { status: 403, title: 'Credential lacks the scope this route needs' },
  DELEGATION_REFUSED: { status: 403, title: 'Acting for another caller refused' },
  AUTHENTICATION_THROTTLED: { status: 429, title: 'Too many failed authentications' },
  CORS_ORIGIN_NOT_ALLOWED: { status: 403, title: 'Origin may not call this API from a browser' },
  NOT_FOUND: { status: 404, title: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  BODY_TOO_LARGE: { status: 413, title: 'Body is larger than the limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SHUTTING_DOWN: { status: 503, title: 'Server is shutting down' },
});

export type HttpErrorCode = keyof typeof httpErrors;

/** Fastify's own client errors, renamed to stable Blocks codes; any other 4xx it raises is BAD_REQUEST. */
export const FRAMEWORK_CODES: Readonly<Record<string, HttpErrorCode>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'EMPTY_BODY',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_BAD_URL: 'BAD_URL',
  FST_ERR_ASYNC_CONSTRAINT: 'BAD_REQUEST',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};
