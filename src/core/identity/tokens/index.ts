import type { FastifyPluginAsync } from 'fastify';
import type { Database } from '../../../platform/db/port.ts';
import type { Clock } from '../../../platform/clock.ts';
import { createKeyEncryption } from './key-encryption.ts';
import { createSigningKeys, type SigningAlgorithm, type SigningKeys } from './signing-keys.ts';
import { createAccessTokenIssuer, type AccessTokenIssuer } from './issuer.ts';
import { tokenRoutes } from './routes.ts';
import type { ClientAuthenticator } from './types.ts';

export { tokenErrors } from './errors.ts';
export { createKeyEncryption, resolveKeyEncryptionKey, type KeyEncryption } from './key-encryption.ts';
export type { AuthenticatedClient, ClientAuthenticator } from './types.ts';
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
  readonly alg?: SigningAlgorithm;
}

export interface TokenModule {
  readonly keys: SigningKeys;
  readonly tokens: AccessTokenIssuer;
  /** `/.well-known/openid-configuration`, `/.well-known/jwks.json`, `POST /oauth/token`; register at the root. */
  readonly routes: FastifyPluginAsync;
}

/** Blocks' own authorization server: signing keys encrypted at rest, token issuance and its HTTP routes. */
export function createTokenModule(options: TokenModuleOptions): TokenModule {
  const keys = createSigningKeys({
    db: options.db,
    clock: options.clock,
    encryption: createKeyEncryption(options.keyEncryptionKey),
    maxTokenTtlMs: options.accessTokenTtlMs,
    ...(options.alg ? { alg: options.alg } : {}),
  });
  const tokens = createAccessTokenIssuer({ issuer: options.issuer, keys, clock: options.clock, maxTtlMs: options.accessTokenTtlMs });
  return {
    keys,
    tokens,
    routes: async (app) => {
      await app.register(tokenRoutes, { issuer: options.issuer, audience: options.audience, keys, tokens, clients: options.clients });
    },
  };
}
