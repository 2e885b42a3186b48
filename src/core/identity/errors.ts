import { BlocksError } from '../../platform/errors.ts';
import { defineErrors } from '../../platform/define-errors.ts';

/** Every error code the identity admin API raises, with its HTTP status and the title docs/errors.md shows. */
export const identityErrors = defineErrors(import.meta.url, {
  INVALID_IDENTITY_INPUT: { status: 400, title: 'Invalid identity request' },
  UNKNOWN_SCOPE: { status: 400, title: 'Unknown scope' },
  SCOPE_NOT_GRANTABLE: { status: 403, title: 'Scope may not be granted by this caller' },
  API_KEY_NOT_FOUND: { status: 404, title: 'API key not found' },
  OAUTH_CLIENT_NOT_FOUND: { status: 404, title: 'OAuth client not found' },
  TENANT_NOT_FOUND: { status: 404, title: 'Tenant not found' },
  TENANT_EXISTS: { status: 409, title: 'Tenant already exists' },
});

export type IdentityErrorCode = keyof typeof identityErrors;

const error = (code: IdentityErrorCode, detail: string, extensions: Record<string, unknown> = {}): BlocksError =>
  new BlocksError(code, identityErrors[code].status, detail, { extensions });

export const invalidIdentityInput = (field: string, detail: string): BlocksError =>
  error('INVALID_IDENTITY_INPUT', `${field}: ${detail}`, { field });

export const unknownScope = (field: string, scopes: readonly string[], known: readonly string[]): BlocksError =>
  error('UNKNOWN_SCOPE', `${field}: unknown scope ${scopes.map((s) => `'${s}'`).join(', ')}; known scopes are ${known.join(', ')}`, {
    field,
    scopes,
  });

// Another tenant's object is reported exactly like a missing one: its existence is not the caller's to learn.
export const apiKeyNotFound = (id: string): BlocksError => error('API_KEY_NOT_FOUND', `No API key '${id}'.`, { id });
export const oauthClientNotFound = (clientId: string): BlocksError =>
  error('OAUTH_CLIENT_NOT_FOUND', `No OAuth client '${clientId}'.`, { client_id: clientId });

// Only holders of tenants:admin reach these: the operator may know which tenants exist.
export const tenantNotFound = (id: string): BlocksError => error('TENANT_NOT_FOUND', `No tenant '${id}'.`, { id });
export const tenantExists = (id: string): BlocksError => error('TENANT_EXISTS', `Tenant '${id}' exists already.`, { id });

export const scopeNotGrantable = (field: string, scopes: readonly string[]): BlocksError =>
  error('SCOPE_NOT_GRANTABLE', `${field}: only a caller holding a scope may grant it; this one does not hold ${scopes.join(', ')}`, {
    field,
    scopes,
  });

/**
 * The same code for the other half of the rule: acting on a principal (rotating its secret,
 * resetting its password, changing its roles, revoking or deleting it) needs every scope it holds.
 * `what` names the principal as its not-found error does; `ids` are the same extensions.
 */
export const scopeNotHeld = (what: string, ids: Record<string, string>, scopes: readonly string[]): BlocksError =>
  error(
    'SCOPE_NOT_GRANTABLE',
    `${what}: only a caller holding every scope it holds may change, take over or remove it; this one does not hold ${scopes.join(', ')}`,
    { ...ids, scopes },
  );
