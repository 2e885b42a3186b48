import type { Clock } from '../../../platform/clock.ts';
import { isBlocksError } from '../../../platform/errors.ts';
import type { Caller } from '../../../platform/http/caller.ts';
import type { ActingFor, Delegation } from '../../../platform/http/delegation.ts';
import type { ScopeCatalog } from '../../../platform/modules/scopes.ts';
import type { ApiKeys } from '../api-keys.ts';
import type { OAuthClients } from '../oauth-clients.ts';
import type { Users } from '../users.ts';

/** Not found answers (another tenant's principal included) mean "gone"; anything else is an outage, rethrown. */
const orNull = async <T>(read: Promise<T>): Promise<T | null> => {
  try {
    return await read;
  } catch (error) {
    if (isBlocksError(error) && error.status === 404) return null;
    throw error;
  }
};

/**
 * Who a service may act for, and with what: the principal the claim names, read now from this
 * tenant's keys, users or clients, so a key revoked since the call began (or a workflow started)
 * acts no more; its scopes narrowed to the claim's, and to a tenant's (operator scopes never
 * travel). Principals of external issuers cannot be re-read, so they are not acted for.
 */
export function createDelegation(options: {
  apiKeys: Pick<ApiKeys, 'get'>;
  users: Pick<Users, 'find'>;
  clients: Pick<OAuthClients, 'get'>;
  scopes: ScopeCatalog;
  clock: Clock;
}): Delegation {
  const { apiKeys, users, clients, scopes, clock } = options;
  const heldNow = async (claim: ActingFor): Promise<readonly string[] | null> => {
    if (claim.kind === 'api_key') {
      if (claim.api_key_id !== claim.subject) return null;
      const key = await orNull(apiKeys.get(claim.tenant, claim.subject));
      if (key === null || key.revoked_at !== null) return null;
      if (key.expires_at !== null && Date.parse(key.expires_at) <= clock.now()) return null;
      return key.scopes;
    }
    // A user's token: what the user's roles grant now. A client's: what the client holds now.
    const user = await users.find(claim.tenant, claim.subject);
    if (user !== null) return user.scopes;
    if (claim.client_id === null || claim.client_id !== claim.subject) return null;
    return (await orNull(clients.get(claim.tenant, claim.client_id)))?.scopes ?? null;
  };
  return {
    async resolve(claim): Promise<Caller | null> {
      const held = await heldNow(claim);
      if (held === null) return null;
      const delegable = new Set(scopes.tenantAdmin);
      const effective = [...new Set(claim.scopes.filter((scope) => held.includes(scope) && delegable.has(scope)))].sort();
      return {
        tenant: claim.tenant,
        kind: claim.kind,
        subject: claim.subject,
        apiKeyId: claim.api_key_id,
        clientId: claim.client_id,
        scopes: effective,
      };
    },
  };
}
