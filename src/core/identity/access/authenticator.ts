import type { JSONWebKeySet } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Config } from '../../../platform/config/schema.ts';
import type { Authenticator } from '../../../platform/http/access.ts';
import type { Caller } from '../../../platform/http/caller.ts';
import { createJwtVerifier, type JwtVerifier, type TrustedIssuer } from './jwt-verifier.ts';
import { invalidToken } from './token-errors.ts';
import type { VerifiedApiKey } from '../api-keys.ts';

const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface IdentityAuthenticatorOptions {
  readonly verifyApiKey: (raw: string) => Promise<VerifiedApiKey | null>;
  /** `iss` of Blocks' own tokens; a function because a gateway on an ephemeral port knows it only once listening. */
  readonly ownIssuer: () => string;
  readonly audience: string;
  /** The public signing keys, read from the database (every process shares it, so no HTTP is needed). */
  readonly ownKeys: () => Promise<JSONWebKeySet>;
  readonly externalIssuers: Config['auth']['external_issuers'];
  readonly clockSkewSec: number;
  /** Seconds since the epoch; the system clock by default. */
  readonly now?: () => number;
  /** Verified tokens remembered at once (by their exact text, until they expire). */
  readonly maxCachedTokens?: number;
}

/**
 * Who a credential speaks for: an identity API key (one SHA-256 and a map lookup once cached), a
 * token of Blocks' own authorization server (keys from the database, in memory), or a token of a
 * configured external OIDC issuer (discovery and JWKS, cached, refetched on an unknown `kid`).
 * A token must name its tenant, in its tenant claim or by its issuer's configured `tenant`.
 *
 * A verified token is remembered by its exact text until its `exp`: clients send the same token
 * for minutes, and a signature check per request would be most of the access decision's cost.
 * Nothing about a token can change before it expires (tokens are not revocable; keep them short).
 */
export function createIdentityAuthenticator(options: IdentityAuthenticatorOptions): Authenticator {
  const fixedTenants = new Map<string, string>();
  const now = options.now ?? ((): number => Date.now() / 1000);
  const verified = new LRUCache<string, { caller: Caller; expiresAt: number }>({ max: options.maxCachedTokens ?? 10_000 });
  // Built on the first token, when the own issuer's URL is known.
  let verifier: JwtVerifier | undefined;
  const verifierOf = (): JwtVerifier => {
    if (verifier) return verifier;
    const issuers: TrustedIssuer[] = [{ issuer: options.ownIssuer(), audience: options.audience, keys: options.ownKeys }];
    for (const external of options.externalIssuers) {
      issuers.push({
        issuer: external.issuer,
        audience: external.audience,
        ...(external.jwks_uri ? { jwksUri: external.jwks_uri } : { discovery: true }),
        ...(external.tenant_claim ? { tenantClaim: external.tenant_claim } : {}),
      });
      if (external.tenant) fixedTenants.set(external.issuer, external.tenant);
    }
    verifier = createJwtVerifier({ issuers, clockSkewSec: options.clockSkewSec });
    return verifier;
  };

  return {
    async authenticate(credential): Promise<Caller | null> {
      if (credential.kind === 'api_key') {
        const key = credential.value === '' ? null : await options.verifyApiKey(credential.value);
        if (!key) return null;
        return { tenant: key.tenant, kind: 'api_key', subject: key.keyId, apiKeyId: key.keyId, clientId: null, scopes: key.scopes };
      }
      const cached = verified.get(credential.value);
      if (cached && cached.expiresAt > now()) return cached.caller;
      const token = await verifierOf().verify(credential.value);
      const tenant = fixedTenants.get(token.issuer) ?? token.tenant;
      if (tenant === undefined || !TENANT.test(tenant)) throw invalidToken('The token names no valid tenant');
      const clientId = token.claims.client_id;
      const caller: Caller = {
        tenant,
        kind: 'token',
        subject: token.subject,
        apiKeyId: null,
        clientId: typeof clientId === 'string' ? clientId : null,
        scopes: token.scopes,
      };
      // Until exp exactly, not exp + skew: the skew forgives clocks, it does not extend tokens.
      if (typeof token.claims.exp === 'number') verified.set(credential.value, { caller, expiresAt: token.claims.exp });
      return caller;
    },
  };
}
