import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

export const AUDIENCE = 'https://api.blocks.test';
const CLIENT = { id: 'blocks-caller', secret: 'a-long-enough-client-secret-for-tests' };

/** A real OpenID provider (panva's oidc-provider) on 127.0.0.1, issuing JWT access tokens by client_credentials. */
export interface ExternalIdp {
  readonly issuer: string;
  /** A token for `AUDIENCE` with `scope`, obtained over HTTP at its token endpoint, as a client of the IdP would. */
  token(scope: string): Promise<string>;
  /** Signs `claims` with the IdP's own key: a token it would never issue (no tenant claim, a malformed one). */
  sign(claims: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

/**
 * @param scopes what the IdP may grant (Blocks' scope names: its tokens carry them in `scope`)
 * @param claims added to every access token it issues, e.g. the claim naming the tenant
 */
export async function startExternalIdp(scopes: readonly string[], claims: Record<string, unknown> = {}): Promise<ExternalIdp> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const key: JWK = { ...(await exportJWK(privateKey)), kid: 'external-1', alg: 'ES256', use: 'sig' };
  // The provider needs its issuer URL, known once the server listens.
  const provider: { handler?: ReturnType<Provider['callback']> } = {};
  const server: Server = createServer((request, response) => {
    if (provider.handler) return provider.handler(request, response);
    response.statusCode = 503;
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  provider.handler = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [key] },
    extraTokenClaims: () => claims,
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: scopes.join(' '),
          audience: AUDIENCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    cookies: { keys: ['test-cookie-key-not-secret'] },
  }).callback();

  return {
    issuer,
    async token(scope) {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: AUDIENCE }),
      });
      const body = (await response.json()) as { access_token?: string };
      if (!response.ok || body.access_token === undefined)
        throw new Error(`IdP token request failed: ${response.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async sign(payload) {
      return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, 'ES256'));
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
