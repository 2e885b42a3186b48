import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { BlocksError } from '../../../platform/errors.ts';
import { ProblemSchema } from '../../../platform/http/schemas.ts';
import { tokenErrors, type TokenErrorCode } from './errors.ts';
import type { AccessTokenIssuer } from './issuer.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { AuthenticatedClient, ClientAuthenticator } from './types.ts';

export interface TokenRoutesOptions {
  /** The issuer URL (`iss`), a function because a test server knows its port only once listening. */
  readonly issuer: () => string;
  readonly audience: string;
  readonly keys: SigningKeys;
  readonly tokens: AccessTokenIssuer;
  readonly clients: ClientAuthenticator;
}

const OAUTH_ERROR: Readonly<Record<TokenErrorCode, string>> = {
  OAUTH_INVALID_REQUEST: 'invalid_request',
  OAUTH_INVALID_CLIENT: 'invalid_client',
  OAUTH_INVALID_SCOPE: 'invalid_scope',
  OAUTH_UNSUPPORTED_GRANT_TYPE: 'unsupported_grant_type',
};

const oauthError = (code: TokenErrorCode, detail: string): BlocksError =>
  new BlocksError(code, tokenErrors[code].status, detail, { extensions: { error: OAUTH_ERROR[code], error_description: detail } });

// RFC 6749 appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

const TokenRequestSchema = Type.Object(
  {
    grant_type: Type.Optional(Type.String({ maxLength: 200 })),
    scope: Type.Optional(Type.String({ maxLength: 2000 })),
    client_id: Type.Optional(Type.String({ maxLength: 200 })),
    client_secret: Type.Optional(Type.String({ maxLength: 500 })),
  },
  // RFC 6749 §3.2: the server MUST ignore parameters it does not know.
  { additionalProperties: Type.String({ maxLength: 2000 }) },
);

const TokenResponseSchema = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer(),
  scope: Type.String(),
});

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
 * Blocks' authorization server: discovery, JWKS and the client_credentials token endpoint.
 * Registered as an encapsulated plugin: its form-body parser applies to these routes only.
 */
export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

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
        grant_types_supported: ['client_credentials'],
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

  app.post(
    '/oauth/token',
    {
      config: { scope: 'client' },
      schema: {
        summary: 'Issue an access token (client_credentials)',
        tags: ['auth'],
        consumes: ['application/x-www-form-urlencoded'],
        body: TokenRequestSchema,
        response: { 200: TokenResponseSchema, 400: ProblemSchema, 401: ProblemSchema },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      reply.header('pragma', 'no-cache');
      const body = request.body;
      const client = await authenticateClient(request, reply, body, options.clients);
      if (body.grant_type === undefined) throw oauthError('OAUTH_INVALID_REQUEST', 'grant_type is required');
      if (body.grant_type !== 'client_credentials') {
        throw oauthError(
          'OAUTH_UNSUPPORTED_GRANT_TYPE',
          `grant_type ${body.grant_type.slice(0, 50)} is not supported; use client_credentials`,
        );
      }
      const scopes = grantedScopes(body.scope, client);
      const issued = await options.tokens.issueAccessToken({
        subject: client.clientId,
        clientId: client.clientId,
        tenant: client.tenant,
        scopes,
        audience: options.audience,
      });
      return { access_token: issued.token, token_type: 'Bearer' as const, expires_in: issued.expiresIn, scope: scopes.join(' ') };
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

/** The requested scopes, each of which the client must hold; all of the client's when none is requested. */
function grantedScopes(requested: string | undefined, client: AuthenticatedClient): string[] {
  if (requested === undefined) return [...client.scopes];
  const scopes = [...new Set(requested.split(' ').filter(Boolean))];
  const malformed = scopes.find((scope) => !SCOPE_TOKEN.test(scope));
  if (malformed !== undefined) throw oauthError('OAUTH_INVALID_SCOPE', 'scope has a malformed scope token');
  const notGranted = scopes.filter((scope) => !client.scopes.includes(scope));
  if (notGranted.length > 0) throw oauthError('OAUTH_INVALID_SCOPE', `The client may not ask for: ${notGranted.join(' ')}`);
  return scopes;
}
