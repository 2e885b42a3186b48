import type { Clock } from '../clock.ts';
import { BlocksError } from '../errors.ts';
import { serviceClientErrors } from './errors.ts';
import type { ServiceCredentials } from './service-credentials.ts';
import type { ServiceTransport } from './autonomous-client.ts';

/**
 * This process' access token as a service identity, from the gateway's token endpoint (client
 * credentials), reused until a minute before it expires. Concurrent callers share one request.
 */
export function createServiceToken(options: { credentials: ServiceCredentials; gateway: ServiceTransport; clock: Clock }) {
  let current: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const fetchToken = async (): Promise<string> => {
    const { clientId, clientSecret } = options.credentials;
    const answer = await options.gateway.send({
      method: 'POST',
      path: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }).toString(),
    });
    const text = typeof answer.body === 'string' ? answer.body : await new Response(answer.body).text();
    if (answer.status !== 200) {
      throw new BlocksError(
        'SERVICE_IDENTITY_REFUSED',
        serviceClientErrors.SERVICE_IDENTITY_REFUSED.status,
        `The gateway refused this service's identity (${answer.status}); check auth.key_encryption_key is the same on every process.`,
      );
    }
    const { access_token: token, expires_in: expiresIn } = JSON.parse(text) as { access_token: string; expires_in: number };
    current = { token, renewAt: options.clock.now() + Math.max(0, expiresIn - 60) * 1000 };
    return token;
  };
  return async ({ renew = false }: { renew?: boolean } = {}): Promise<string> => {
    if (!renew && current !== undefined && current.renewAt > options.clock.now()) return current.token;
    pending ??= fetchToken().finally(() => (pending = undefined));
    return pending;
  };
}
