import { randomBytes } from 'node:crypto';
import { steppingClock, type SteppingClock } from '../../../support/stepping-clock.ts';
import type { AuthenticatedClient, ClientAuthenticator } from '../../../../src/core/identity/tokens/index.ts';

/** A clock the test moves by hand, starting now. */
export type ManualClock = SteppingClock;
export const manualClock = (start = Date.now()): ManualClock => steppingClock(start);

export const newKek = (): Uint8Array => randomBytes(32);

/** The ClientAuthenticator port, in memory: the identity store's implementation is tested with identity. */
export function memoryClients(clients: ReadonlyArray<AuthenticatedClient & { secret: string }>): ClientAuthenticator & { calls: number } {
  const byId = new Map(clients.map((client) => [client.clientId, client]));
  const port = {
    calls: 0,
    async authenticate(clientId: string, secret: string): Promise<AuthenticatedClient | null> {
      port.calls += 1;
      const client = byId.get(clientId);
      if (!client || client.secret !== secret) return null;
      return { clientId: client.clientId, tenant: client.tenant, scopes: client.scopes };
    },
  };
  return port;
}
