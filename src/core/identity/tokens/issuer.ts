import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../../platform/clock.ts';
import type { SigningKeys } from './signing-keys.ts';

export interface AccessTokenRequest {
  readonly subject: string;
  readonly tenant: string;
  readonly scopes: readonly string[];
  readonly audience: string;
  /** Lifetime in milliseconds; capped at the issuer's `maxTtlMs`. */
  readonly ttlMs?: number;
  /** The OAuth client the token was issued to (`client_id` claim, RFC 9068). */
  readonly clientId?: string;
}

export interface IssuedAccessToken {
  readonly token: string;
  readonly kid: string;
  /** Seconds. */
  readonly expiresIn: number;
}

export interface AccessTokenIssuer {
  /** A JWT signed with the current key, its `kid` in the header, `typ: at+jwt` (RFC 9068). */
  issueAccessToken(request: AccessTokenRequest): Promise<IssuedAccessToken>;
}

export interface AccessTokenIssuerOptions {
  readonly issuer: () => string;
  readonly keys: SigningKeys;
  readonly clock: Clock;
  /**
   * Longest lifetime a token may have. Retired keys are kept in the JWKS for this long, so a
   * longer-lived token would outlive its key: requests for more are cut down to it.
   */
  readonly maxTtlMs: number;
}

export function createAccessTokenIssuer(options: AccessTokenIssuerOptions): AccessTokenIssuer {
  return {
    async issueAccessToken(request) {
      const ttlSec = Math.max(1, Math.floor(Math.min(request.ttlMs ?? options.maxTtlMs, options.maxTtlMs) / 1000));
      const now = Math.floor(options.clock.now() / 1000);
      const key = await options.keys.current();
      const token = await new SignJWT({
        tenant: request.tenant,
        scope: request.scopes.join(' '),
        ...(request.clientId ? { client_id: request.clientId } : {}),
      })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(options.issuer())
        .setSubject(request.subject)
        .setAudience(request.audience)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + ttlSec)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, kid: key.kid, expiresIn: ttlSec };
    },
  };
}
