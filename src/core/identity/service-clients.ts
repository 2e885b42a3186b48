import type { Database } from '../../platform/db/port.ts';
import type { ServiceCredentials } from '../../platform/clients/service-credentials.ts';
import { SERVICE_ROLE } from '../../platform/modules/scopes.ts';
import { ensureTenant } from './change-context.ts';
import { FIRST_TENANT } from './bootstrap.ts';
import { hashPassword, verifyPassword } from './secrets.ts';

/**
 * Registers the OAuth client each calling service authenticates as (role `service`: it acts for
 * callers, holding nothing of its own), with the secret derived from the shared key-encryption key.
 * Run by the gateway at every start: a rotated key re-derives the secret, and the stored hash follows.
 */
export async function ensureServiceClients(
  db: Database,
  services: ReadonlyArray<{ name: string; credentials: ServiceCredentials }>,
): Promise<void> {
  for (const { name, credentials } of services) {
    const { rows } = await db.query<{ secret_hash: string }>('SELECT secret_hash FROM oauth_clients WHERE client_id = $1', [
      credentials.clientId,
    ]);
    const stored = rows[0];
    if (stored !== undefined && (await verifyPassword(credentials.clientSecret, stored.secret_hash))) continue;
    const hash = await hashPassword(credentials.clientSecret);
    await db.transaction(async (tx) => {
      await ensureTenant(tx, FIRST_TENANT);
      await tx.query(
        `INSERT INTO oauth_clients (client_id, tenant, name, secret_hash, scopes, roles) VALUES ($1, $2, $3, $4, '{}', $5::text[])
         ON CONFLICT (client_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, roles = EXCLUDED.roles, rotated_at = now()`,
        [credentials.clientId, FIRST_TENANT, `service: ${name} (made by Blocks)`, hash, [SERVICE_ROLE]],
      );
    });
  }
}
