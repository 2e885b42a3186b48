import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

export const IDP_AUDIENCE = 'https://api.blocks.test';
export const IDP_CLIENT = { id: 'blocks-service', secret: 'a-long-enough-client-secret-for-tests' };

/** A real OpenID provider (panva's oidc-provider) on 127.0.0.1, issuing JWT access tokens by client_credentials. */
export interface TestIdp {
  readonly issuer: string;
  /** The kid its tokens are signed with now. */
  readonly currentKid: string;
  /** A token for `IDP_AUDIENCE` with the given scopes, obtained over HTTP at its token endpoint. */
  token(scope?: string): Promise<string>;
  /** Starts signing with a new key, keeping the old one published (as a rotating IdP does). */
  rotate(): Promise<void>;
  /** Signs `claims` with the IdP's current private key: for tokens the IdP would never issue (expired, wrong audience…). */
  sign(claims: JWTPayload): Promise<string>;
  /** How many times its JWKS has been fetched. */
  readonly jwksFetches: number;
  close(): Promise<void>;
}

async function signingKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
}

function providerFor(issuer: string, keys: JWK[]): Provider {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: IDP_CLIENT.id,
        client_secret: IDP_CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => IDP_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'models:read models:write admin',
          audience: IDP_AUDIENCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    cookies: { keys: ['test-cookie-key-not-secret'] },
  });
  return provider;
}

export async function startTestIdp(): Promise<TestIdp> {
  let jwksFetches = 0;
  let handler: ReturnType<Provider['callback']> | undefined;
  const server: Server = createServer((request, response) => {
    if (request.url?.startsWith('/jwks')) jwksFetches += 1;
    if (!handler) {
      response.statusCode = 503;
      response.end();
      return;
    }
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const keys = [await signingKey('idp-key-1')];
  handler = providerFor(issuer, keys).callback();

  return {
    issuer,
    get currentKid() {
      return keys[0]?.kid as string;
    },
    get jwksFetches() {
      return jwksFetches;
    },
    async token(scope = 'models:read') {
      const response = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${IDP_CLIENT.id}:${IDP_CLIENT.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: IDP_AUDIENCE }),
      });
      const body = (await response.json()) as { access_token?: string };
      if (!response.ok || !body.access_token) throw new Error(`IdP token request failed: ${response.status} ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async sign(claims) {
      const key = keys[0] as JWK;
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' }).sign(await importJWK(key, 'ES256'));
    },
    async rotate() {
      keys.unshift(await signingKey(`idp-key-${keys.length + 1}`));
      // oidc-provider signs with the first key of its set: a new instance on the same issuer and port.
      handler = providerFor(issuer, [...keys]).callback();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
