import type { Database } from '../../platform/db/port.ts';
import type { OAuthClients } from './oauth-clients.ts';
import { PLATFORM_ROLE } from '../../platform/modules/scopes.ts';

export const FIRST_TENANT = 'default';

/** The admin client made on first start; its secret exists only in this value. */
export interface FirstStart {
  readonly tenant: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * On a database with no tenant yet, creates the `default` tenant and an admin client with the
 * `platform` role, so it holds every scope, those of modules added later included: it is the platform operator's (tenants, the model catalog) and the default tenant's admin. Replicas starting together race on the tenant's insert: only the one that
 * inserts it makes the client, so there is exactly one. Returns null on every later start.
 */
export async function bootstrapIdentity(db: Database, clients: OAuthClients): Promise<FirstStart | null> {
  return db.transaction(async (tx) => {
    const { rows: any } = await tx.query('SELECT 1 FROM tenants LIMIT 1');
    if (any.length > 0) return null;
    const { rowCount } = await tx.query("INSERT INTO tenants (id, name) VALUES ($1, 'Default tenant') ON CONFLICT (id) DO NOTHING", [
      FIRST_TENANT,
    ]);
    if (rowCount === 0) return null;
    const client = await clients.createIn(
      tx,
      FIRST_TENANT,
      { name: 'admin (created on first start)', scopes: [], roles: [PLATFORM_ROLE] },
      { correlationId: 'first-start', actor: null },
    );
    return { tenant: FIRST_TENANT, clientId: client.client_id, clientSecret: client.client_secret };
  });
}
