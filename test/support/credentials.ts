import { type IdentityModule } from '../../src/core/identity/index.ts';
import { scopes as SCOPES } from './registry.ts';

/** API keys made through the identity module, for tests whose subject is not authentication itself. */
export interface TestCredentials {
  /** `x-api-key` headers of a key of `tenant` holding `scopes` (every known scope by default); one key per tenant and scope set. */
  headers(tenant?: string, scopes?: readonly string[]): Promise<Record<string, string>>;
  /** The raw key behind `headers`, for clients that take a key (the OpenAI SDK, autocannon). */
  key(tenant?: string, scopes?: readonly string[]): Promise<string>;
  /** The id of that key (what `request.caller.apiKeyId` is for requests made with it). */
  keyId(tenant?: string, scopes?: readonly string[]): Promise<string>;
}

/**
 * Real keys, created as the admin API would (hashed, in the tenant's table, with an audit event),
 * so tests of other modules pass the same access decision every caller does.
 */
export function testCredentials(target: { readonly identity: IdentityModule }): TestCredentials {
  const made = new Map<string, Promise<{ key: string; id: string }>>();
  const keyOf = (tenant = 'default', scopes: readonly string[] = SCOPES.known): Promise<{ key: string; id: string }> => {
    const name = `${tenant} ${[...scopes].sort().join(' ')}`;
    let key = made.get(name);
    if (!key) {
      key = target.identity.apiKeys
        .create(tenant, { name: 'test', scopes: [...scopes], expiresAt: null }, { correlationId: 'test-credentials' })
        .then((created) => ({ key: created.key, id: created.id }));
      made.set(name, key);
    }
    return key;
  };
  return {
    headers: async (tenant, scopes) => ({ 'x-api-key': (await keyOf(tenant, scopes)).key }),
    key: async (tenant, scopes) => (await keyOf(tenant, scopes)).key,
    keyId: async (tenant, scopes) => (await keyOf(tenant, scopes)).id,
  };
}
