import type { Caller } from './caller.ts';

/**
 * A service of a split deployment calling another for a caller (a workflow's AI step): it
 * authenticates as itself, a principal holding {@link ACT_FOR_SCOPE}, and names the caller in this
 * header. The called service decides again, as that caller: tenant from the claim, scopes no wider
 * than the claim, than what the named principal holds today, and than a tenant's scopes (no
 * operator scope is ever delegated). A service cannot widen what its caller could do.
 */
export const ACT_FOR_HEADER = 'x-blocks-act-for';

/** Held by the service identities (role `service`): lets a principal act for another within its scopes. */
export const ACT_FOR_SCOPE = 'services:act';

/** The caller a service acts for, as it travels (base64url JSON in {@link ACT_FOR_HEADER}). */
export interface ActingFor {
  readonly tenant: string;
  readonly kind: 'api_key' | 'token';
  /** The key id, or the token's subject (a user id, or a client id for client credentials). */
  readonly subject: string;
  readonly api_key_id: string | null;
  readonly client_id: string | null;
  readonly scopes: readonly string[];
}

/** The identity half of delegation (implemented by core/identity). */
export interface Delegation {
  /**
   * The caller `claim` names, with the scopes it may use now: the claim's, narrowed to what that
   * principal holds today and to a tenant's scopes. Null when the principal is gone (revoked,
   * deleted, expired) or is not one of Blocks' own.
   */
  resolve(claim: ActingFor): Promise<Caller | null>;
}

const MAX_HEADER = 8 * 1024;
const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ID = /^[A-Za-z0-9._:@-]{1,200}$/;

/** The header value naming `caller` (an authenticated caller of the service making the call). */
export function encodeActingFor(caller: Caller): string {
  if (caller.kind === 'anonymous' || caller.subject === null) throw new Error('an anonymous caller cannot be acted for');
  const claim: ActingFor = {
    tenant: caller.tenant,
    kind: caller.kind,
    subject: caller.subject,
    api_key_id: caller.apiKeyId,
    client_id: caller.clientId,
    scopes: [...caller.scopes],
  };
  return Buffer.from(JSON.stringify(claim)).toString('base64url');
}

/** The claim in a header value, or null for anything malformed (which the access decision refuses). */
export function decodeActingFor(value: string): ActingFor | null {
  if (value.length > MAX_HEADER || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const claim = parsed as Record<string, unknown>;
  const optionalId = (v: unknown): v is string | null => v === null || (typeof v === 'string' && ID.test(v));
  if (typeof claim.tenant !== 'string' || !TENANT.test(claim.tenant)) return null;
  if (claim.kind !== 'api_key' && claim.kind !== 'token') return null;
  if (typeof claim.subject !== 'string' || !ID.test(claim.subject)) return null;
  if (!optionalId(claim.api_key_id) || !optionalId(claim.client_id)) return null;
  if (!Array.isArray(claim.scopes) || claim.scopes.length > 200 || !claim.scopes.every((s) => typeof s === 'string' && ID.test(s)))
    return null;
  return {
    tenant: claim.tenant,
    kind: claim.kind,
    subject: claim.subject,
    api_key_id: claim.api_key_id,
    client_id: claim.client_id,
    scopes: claim.scopes as string[],
  };
}
