import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../../src/platform/clock.ts';
import type { AuthenticatedClient, ClientAuthenticator } from '../../../../src/core/identity/tokens/index.ts';

/** A clock the test moves by hand. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
}

export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

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
