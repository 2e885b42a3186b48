import type { FastifyPluginAsync } from 'fastify';
import type { Database } from '../../../platform/db/port.ts';
import type { Clock } from '../../../platform/clock.ts';
import { createKeyEncryption } from './key-encryption.ts';
import { createSigningKeys, type SigningAlgorithm, type SigningKeys } from './signing-keys.ts';
import { createAccessTokenIssuer, type AccessTokenIssuer } from './issuer.ts';
import { tokenRoutes } from './routes.ts';
import { createRefreshTokens, type RefreshTokens } from './refresh-tokens.ts';
import type { ClientAuthenticator, UserAuthenticator } from './types.ts';

export { tokenErrors } from './errors.ts';
export { createKeyEncryption, resolveKeyEncryptionKey, type KeyEncryption } from './key-encryption.ts';
export type { AuthenticatedClient, ClientAuthenticator, ResourceOwner, UserAuthenticator } from './types.ts';
export { REFRESH_TOKEN_REUSED, type RefreshTokens, type RefreshGrant } from './refresh-tokens.ts';
export { createSigningKeys, type SigningKeys, type CurrentSigningKey, type SigningAlgorithm } from './signing-keys.ts';
export type { AccessTokenIssuer, AccessTokenRequest, IssuedAccessToken } from './issuer.ts';

export interface TokenModuleOptions {
  readonly db: Database;
  readonly clock: Clock;
  /** `iss` of every token and the base of the discovery URLs. */
  readonly issuer: () => string;
  /** `aud` of tokens from the token endpoint. */
  readonly audience: string;
  /** Lifetime of access tokens, and so how long a retired key stays published. */
  readonly accessTokenTtlMs: number;
  /** 32 bytes; see resolveKeyEncryptionKey. */
  readonly keyEncryptionKey: Uint8Array;
  readonly clients: ClientAuthenticator;
  /** Users for the password grant, and for refresh tokens issued to users. */
  readonly users?: UserAuthenticator | undefined;
  /** Serve the resource-owner password grant (`auth.password_grant`; off by default, OAuth 2.1 drops it). Needs `users`. */
  readonly passwordGrant?: boolean | undefined;
  /** Lifetime of each refresh token (`auth.refresh_token_ttl`); 30 days when absent. */
  readonly refreshTokenTtlMs?: number | undefined;
  /** After a commit that wrote an audit event (wakes the outbox relay; it polls anyway). */
  readonly onEventAppended?: (() => void) | undefined;
  readonly alg?: SigningAlgorithm;
}

export interface TokenModule {
  readonly keys: SigningKeys;
  readonly tokens: AccessTokenIssuer;
  readonly refreshTokens: RefreshTokens;
  /** `/.well-known/openid-configuration`, `/.well-known/jwks.json`, `POST /oauth/token`; register at the root. */
  readonly routes: FastifyPluginAsync;
}

const DEFAULT_REFRESH_TOKEN_TTL_MS = 30 * 24 * 60 * 60_000;

/** Blocks' own authorization server: signing keys encrypted at rest, token issuance and its HTTP routes. */
export function createTokenModule(options: TokenModuleOptions): TokenModule {
  const passwordGrant = options.passwordGrant === true;
  if (passwordGrant && !options.users) throw new Error('auth.password_grant needs the identity user store (users)');
  const keys = createSigningKeys({
    db: options.db,
    clock: options.clock,
    encryption: createKeyEncryption(options.keyEncryptionKey),
    maxTokenTtlMs: options.accessTokenTtlMs,
    ...(options.alg ? { alg: options.alg } : {}),
  });
  const tokens = createAccessTokenIssuer({ issuer: options.issuer, keys, clock: options.clock, maxTtlMs: options.accessTokenTtlMs });
  const refreshTokens = createRefreshTokens({
    db: options.db,
    clock: options.clock,
    ttlMs: options.refreshTokenTtlMs ?? DEFAULT_REFRESH_TOKEN_TTL_MS,
    onEventAppended: options.onEventAppended,
  });
  return {
    keys,
    tokens,
    refreshTokens,
    routes: async (app) => {
      await app.register(tokenRoutes, {
        issuer: options.issuer,
        audience: options.audience,
        keys,
        tokens,
        clients: options.clients,
        refreshTokens,
        clock: options.clock,
        users: options.users,
        passwordGrant,
      });
    },
  };
}
