import { defineErrors } from '../../../platform/define-errors.ts';
/**
 * Codes of the token endpoint. Each problem also carries RFC 6749 §5.2's `error` member
 * (`invalid_client`, …), so OAuth client libraries read it as they expect. Listed in docs/errors.md.
 */
export const tokenErrors = defineErrors(import.meta.url, {
  OAUTH_INVALID_REQUEST: { status: 400, title: 'Token request is malformed' },
  OAUTH_INVALID_CLIENT: { status: 401, title: 'Client authentication failed' },
  OAUTH_INVALID_GRANT: { status: 400, title: 'Grant is not valid' },
  OAUTH_INVALID_SCOPE: { status: 400, title: 'Requested scope is not granted to the client' },
  OAUTH_UNSUPPORTED_GRANT_TYPE: { status: 400, title: 'Grant type is not supported' },
});

export type TokenErrorCode = keyof typeof tokenErrors;
