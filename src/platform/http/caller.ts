/**
 * Who is calling, as every module sees it: set on each request by the access hook (access.ts)
 * from a verified API key or token, never from a header the caller could simply write. Modules
 * scope reads, writes, budgets and usage by `tenant`.
 */
export interface Caller {
  /** The tenant whose data the request may touch; empty for an anonymous call (public routes only). */
  readonly tenant: string;
  readonly kind: 'anonymous' | 'api_key' | 'token';
  /** The key's id, the token's `sub`, or null when anonymous. */
  readonly subject: string | null;
  /** The identity API key the request came with (its id, never the key); null otherwise. */
  readonly apiKeyId: string | null;
  /** The OAuth client a token was issued to, when it says. */
  readonly clientId: string | null;
  readonly scopes: readonly string[];
}

export const ANONYMOUS: Caller = Object.freeze({
  tenant: '',
  kind: 'anonymous',
  subject: null,
  apiKeyId: null,
  clientId: null,
  scopes: [],
});

/** Optional on a request: when sent, it must name the caller's own tenant (a client configured for another gets a 403, not another's data). */
export const TENANT_HEADER = 'x-blocks-tenant';

/** What modules scope data by: the tenant, and the key for per-key budgets and usage. */
export type Tenancy = Pick<Caller, 'tenant' | 'apiKeyId'>;
