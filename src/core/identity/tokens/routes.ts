import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { BlocksError } from '../../../platform/errors.ts';
import { ProblemSchema } from '../../../platform/http/schemas.ts';
import { tokenErrors, type TokenErrorCode } from './errors.ts';
import type { AccessTokenIssuer } from './issuer.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { Clock } from '../../../platform/clock.ts';
import type { ChangeContext } from '../change-context.ts';
import type { RefreshTokens } from './refresh-tokens.ts';
import type { AuthenticatedClient, ClientAuthenticator, UserAuthenticator } from './types.ts';

export interface TokenRoutesOptions {
  /** The issuer URL (`iss`), a function because a test server knows its port only once listening. */
  readonly issuer: () => string;
  readonly audience: string;
  readonly keys: SigningKeys;
  readonly tokens: AccessTokenIssuer;
  readonly clients: ClientAuthenticator;
  readonly refreshTokens: RefreshTokens;
  readonly clock: Clock;
  /** Looks users up for the password grant and, on refresh, for the tokens it issued. */
  readonly users?: UserAuthenticator | undefined;
  /** Serve the resource-owner password grant (`auth.password_grant`); needs `users`. */
  readonly passwordGrant: boolean;
}

const OAUTH_ERROR: Readonly<Record<TokenErrorCode, string>> = {
  OAUTH_INVALID_REQUEST: 'invalid_request',
  OAUTH_INVALID_CLIENT: 'invalid_client',
  OAUTH_INVALID_GRANT: 'invalid_grant',
  OAUTH_INVALID_SCOPE: 'invalid_scope',
  OAUTH_UNSUPPORTED_GRANT_TYPE: 'unsupported_grant_type',
};

const oauthError = (code: TokenErrorCode, detail: string): BlocksError =>
  new BlocksError(code, tokenErrors[code].status, detail, { extensions: { error: OAUTH_ERROR[code], error_description: detail } });

// RFC 6749 appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

// One message for an unknown user and a wrong password: the answer must not tell which emails exist.
const BAD_PASSWORD = 'The username or password is not correct';
const BAD_REFRESH_TOKEN = 'The refresh token is not valid: unknown, expired or revoked';

const TokenRequestSchema = Type.Object(
  {
    grant_type: Type.Optional(Type.String({ maxLength: 200 })),
    scope: Type.Optional(Type.String({ maxLength: 2000 })),
    client_id: Type.Optional(Type.String({ maxLength: 200 })),
    client_secret: Type.Optional(Type.String({ maxLength: 500 })),
    username: Type.Optional(Type.String({ maxLength: 320, description: "password grant: the user's email" })),
    password: Type.Optional(Type.String({ maxLength: 1024, description: "password grant: the user's password" })),
    refresh_token: Type.Optional(Type.String({ maxLength: 200, description: 'refresh_token grant: the token to rotate' })),
  },
  // RFC 6749 §3.2: the server MUST ignore parameters it does not know.
  { additionalProperties: Type.String({ maxLength: 2000 }) },
);
type TokenRequest = Static<typeof TokenRequestSchema>;

const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String(),
  refresh_token: Type.Optional(
    Type.String({ description: 'password and refresh_token grants: use once for new tokens; the answer carries its successor' }),
  ),
});
type TokenResponse = Static<typeof TokenResponseSchema>;

const JwksSchema = Type.Object({
  keys: Type.Array(Type.Object({ kid: Type.String(), kty: Type.String() }, { additionalProperties: true })),
});

const MetadataSchema = Type.Object({
  issuer: Type.String(),
  token_endpoint: Type.String(),
  jwks_uri: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  response_types_supported: Type.Array(Type.String()),
  subject_types_supported: Type.Array(Type.String()),
  id_token_signing_alg_values_supported: Type.Array(Type.String()),
});

/**
 * Blocks' authorization server: discovery, JWKS and the token endpoint (client_credentials,
 * refresh_token and, when configured, password). Registered as an encapsulated plugin: its
 * form-body parser applies to these routes only.
 */
export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  if (options.passwordGrant && !options.users) throw new Error('the password grant needs a user store');
  const grantTypes = ['client_credentials', 'refresh_token', ...(options.passwordGrant ? ['password'] : [])];

  // Token requests are form-encoded (RFC 6749 §4.4.2); a JSON body here is a 415, not an alternative.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    const params: Record<string, string> = {};
    for (const [name, value] of new URLSearchParams(body as string)) {
      // RFC 6749 §3.2: parameters MUST NOT be included more than once.
      if (Object.hasOwn(params, name)) return done(oauthError('OAUTH_INVALID_REQUEST', `Parameter ${name} is given more than once`));
      params[name] = value;
    }
    done(null, params);
  });

  app.get(
    '/.well-known/openid-configuration',
    {
      config: { scope: 'public' },
      schema: { summary: 'Authorization server metadata (OpenID discovery)', tags: ['auth'], response: { 200: MetadataSchema } },
    },
    async () => {
      const issuer = options.issuer();
      return {
        issuer,
        token_endpoint: `${issuer}/oauth/token`,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        grant_types_supported: grantTypes,
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        response_types_supported: ['token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['ES256', 'EdDSA'],
      };
    },
  );

  app.get(
    '/.well-known/jwks.json',
    {
      config: { scope: 'public' },
      schema: { summary: 'Public keys that verify Blocks tokens', tags: ['auth'], response: { 200: JwksSchema } },
    },
    async (_request, reply) => {
      // Short: verifiers refetch on an unknown kid anyway, and a retired key must be able to leave.
      reply.header('cache-control', 'public, max-age=60');
      return (await options.keys.jwks()) as { keys: Array<{ kid: string; kty: string }> };
    },
  );

  const accessToken = async (
    grant: { subject: string; clientId: string; tenant: string; scopes: readonly string[] },
    refreshToken?: string,
  ): Promise<TokenResponse> => {
    const issued = await options.tokens.issueAccessToken({ ...grant, audience: options.audience });
    return {
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      scope: grant.scopes.join(' '),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
    };
  };

  const clientCredentials = (client: AuthenticatedClient, body: TokenRequest): Promise<TokenResponse> => {
    const scopes = narrowed(requestedScopes(body.scope), client.scopes, 'The client may not ask for');
    // No refresh token (RFC 6749 §4.4.3): the client can always ask again with its own credentials.
    return accessToken({ subject: client.clientId, clientId: client.clientId, tenant: client.tenant, scopes });
  };

  const passwordGrant = async (client: AuthenticatedClient, body: TokenRequest, users: UserAuthenticator): Promise<TokenResponse> => {
    if (body.username === undefined || body.password === undefined) {
      throw oauthError('OAUTH_INVALID_REQUEST', 'grant_type password needs username and password');
    }
    const requested = requestedScopes(body.scope);
    // Only users of the client's own tenant: a client never signs anyone into another tenant.
    const user = await users.authenticate(client.tenant, body.username, body.password);
    if (!user) throw oauthError('OAUTH_INVALID_GRANT', BAD_PASSWORD);
    // Least privilege both ways: what the user's roles give and the client may carry.
    const allowed = user.scopes.filter((scope) => client.scopes.includes(scope));
    const scopes = narrowed(requested, allowed, 'Neither the user nor this client may ask for');
    const grant = { subject: user.userId, clientId: client.clientId, tenant: client.tenant, scopes };
    const response = await accessToken(grant);
    const refreshToken = await options.refreshTokens.issue({ ...grant, userId: user.userId });
    return { ...response, refresh_token: refreshToken };
  };

  const refreshGrant = async (client: AuthenticatedClient, body: TokenRequest, context: ChangeContext): Promise<TokenResponse> => {
    if (body.refresh_token === undefined) throw oauthError('OAUTH_INVALID_REQUEST', 'grant_type refresh_token needs refresh_token');
    const requested = requestedScopes(body.scope);
    const stored = await options.refreshTokens.find(body.refresh_token);
    if (!stored) throw oauthError('OAUTH_INVALID_GRANT', BAD_REFRESH_TOKEN);
    // RFC 9700 §4.14.2: a token is bound to its client, and one presented again after rotation
    // means two parties hold it. Either way it has leaked: the whole family goes.
    if (stored.clientId !== client.clientId) {
      await options.refreshTokens.revokeFamily(stored, 'wrong_client', context);
      throw oauthError('OAUTH_INVALID_GRANT', BAD_REFRESH_TOKEN);
    }
    if (stored.used) {
      await options.refreshTokens.revokeFamily(stored, 'reused', context);
      throw oauthError('OAUTH_INVALID_GRANT', 'The refresh token was used before; every token of its grant is revoked');
    }
    if (stored.expiresAt <= options.clock.now()) throw oauthError('OAUTH_INVALID_GRANT', BAD_REFRESH_TOKEN);
    const widened = (requested ?? []).filter((scope) => !stored.scopes.includes(scope));
    if (widened.length > 0) {
      throw oauthError('OAUTH_INVALID_SCOPE', `A refresh may narrow the original grant, never widen it; not granted: ${widened.join(' ')}`);
    }
    // What the client and user may hold now: a role or client scope taken away since the grant stays away.
    let allowed = stored.scopes.filter((scope) => client.scopes.includes(scope));
    if (stored.userId !== null) {
      const user = await options.users?.find(stored.tenant, stored.userId);
      if (!user) throw oauthError('OAUTH_INVALID_GRANT', BAD_REFRESH_TOKEN);
      allowed = allowed.filter((scope) => user.scopes.includes(scope));
    }
    const scopes = (requested ?? stored.scopes).filter((scope) => allowed.includes(scope));
    // Signed before rotating: if signing failed after, the client would have lost its session.
    const response = await accessToken({ subject: stored.subject, clientId: client.clientId, tenant: stored.tenant, scopes });
    const rotation = await options.refreshTokens.rotate(stored, context);
    if (rotation.outcome === 'reused') {
      throw oauthError('OAUTH_INVALID_GRANT', 'The refresh token was used before; every token of its grant is revoked');
    }
    if (rotation.outcome !== 'rotated') throw oauthError('OAUTH_INVALID_GRANT', BAD_REFRESH_TOKEN);
    return { ...response, refresh_token: rotation.token };
  };

  app.post(
    '/oauth/token',
    {
      config: { scope: 'client' },
      // A malformed parameter is answered in OAuth's terms (invalid_request), not as a schema failure.
      attachValidation: true,
      schema: {
        summary: `Issue an access token (${grantTypes.join(', ')})`,
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded'],
        body: TokenRequestSchema,
        response: { 200: TokenResponseSchema, 400: ProblemSchema, 401: ProblemSchema },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      reply.header('pragma', 'no-cache');
      if (request.validationError) throw oauthError('OAUTH_INVALID_REQUEST', request.validationError.message);
      const body = request.body;
      const client = await authenticateClient(request, reply, body, options.clients);
      switch (body.grant_type) {
        case undefined:
          throw oauthError('OAUTH_INVALID_REQUEST', 'grant_type is required');
        case 'client_credentials':
          return clientCredentials(client, body);
        case 'refresh_token':
          return refreshGrant(client, body, { correlationId: request.id, traceparent: request.trace.traceparent, actor: client.clientId });
        case 'password':
          if (options.passwordGrant && options.users) return passwordGrant(client, body, options.users);
          break;
      }
      throw oauthError(
        'OAUTH_UNSUPPORTED_GRANT_TYPE',
        `grant_type ${body.grant_type.slice(0, 50)} is not supported; use one of ${grantTypes.join(', ')}`,
      );
    },
  );
};

async function authenticateClient(
  request: FastifyRequest,
  reply: FastifyReply,
  body: { client_id?: string; client_secret?: string },
  clients: ClientAuthenticator,
): Promise<AuthenticatedClient> {
  const basic = basicCredentials(request.headers.authorization);
  if (basic && (body.client_id !== undefined || body.client_secret !== undefined)) {
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    throw oauthError('OAUTH_INVALID_REQUEST', 'Use either HTTP Basic or client_id/client_secret in the body, not both');
  }
  const credentials =
    basic ??
    (body.client_id !== undefined && body.client_secret !== undefined ? { id: body.client_id, secret: body.client_secret } : undefined);
  const client = credentials ? await clients.authenticate(credentials.id, credentials.secret) : null;
  if (!client) {
    // RFC 6749 §5.2: a 401 for invalid_client carries WWW-Authenticate with the scheme the client used (or should).
    reply.header('www-authenticate', 'Basic realm="blocks", charset="UTF-8"');
    throw oauthError('OAUTH_INVALID_CLIENT', credentials ? 'Client authentication failed' : 'Client credentials are required');
  }
  return client;
}

/** `Authorization: Basic` with id and secret each form-encoded first (RFC 6749 §2.3.1). */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw oauthError('OAUTH_INVALID_REQUEST', 'Basic credentials must be client_id:client_secret');
  try {
    const formDecode = (part: string): string => decodeURIComponent(part.replaceAll('+', ' '));
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    throw oauthError('OAUTH_INVALID_REQUEST', 'Basic credentials are not correctly form-encoded');
  }
}

/** The scopes asked for, deduplicated; undefined when `scope` is absent. @throws invalid_scope for a malformed scope token */
function requestedScopes(scope: string | undefined): string[] | undefined {
  if (scope === undefined) return undefined;
  const scopes = [...new Set(scope.split(' ').filter(Boolean))];
  if (scopes.some((token) => !SCOPE_TOKEN.test(token))) throw oauthError('OAUTH_INVALID_SCOPE', 'scope has a malformed scope token');
  return scopes;
}

/** The requested scopes, each of which must be allowed; all allowed ones when none is requested. */
function narrowed(requested: readonly string[] | undefined, allowed: readonly string[], refusal: string): string[] {
  if (requested === undefined) return [...allowed];
  const notAllowed = requested.filter((scope) => !allowed.includes(scope));
  if (notAllowed.length > 0) throw oauthError('OAUTH_INVALID_SCOPE', `${refusal}: ${notAllowed.join(' ')}`);
  return [...requested];
}
