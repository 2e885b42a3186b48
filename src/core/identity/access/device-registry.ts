import type { Clock } from '../../../platform/clock.ts';
import type { Database } from '../../../platform/db/port.ts';
import type { DeviceRegistry } from './context-policy.ts';

export interface CachedDeviceRegistry extends DeviceRegistry {
  /** Drops what this replica remembers of a device (called when one is deleted anywhere). */
  readonly forget: (tenant: string, fingerprint: string) => void;
}

/**
 * Registered devices as the context policy asks about them: read from `devices`, remembered for
 * `ttlMs` (found or not) so a device check costs a query only now and then. Deleting a device
 * reaches every replica through its event, which calls `forget`.
 */
export function createDeviceRegistry(options: { db: Database; clock: Clock; ttlMs?: number; maxEntries?: number }): CachedDeviceRegistry {
  const ttlMs = options.ttlMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const known = new Map<string, { registered: boolean; until: number }>();
  // Bumped by every forget: a read that began before one must not cache what it read.
  let generation = 0;
  const keyOf = (tenant: string, fingerprint: string): string => `${tenant}\u0000${fingerprint}`;
  return {
    async isRegistered(tenant, fingerprint) {
      const key = keyOf(tenant, fingerprint);
      const now = options.clock.now();
      const cached = known.get(key);
      if (cached && cached.until > now) return cached.registered;
      const readingSince = generation;
      const { rows } = await options.db.query('SELECT 1 FROM devices WHERE tenant = $1 AND fingerprint = $2', [tenant, fingerprint]);
      if (readingSince === generation) {
        // Oldest first out: a caller cycling through made-up device ids must not grow memory.
        if (known.size >= maxEntries) known.delete(known.keys().next().value as string);
        known.set(key, { registered: rows.length > 0, until: now + ttlMs });
      }
      return rows.length > 0;
    },
    forget(tenant, fingerprint) {
      generation += 1;
      known.delete(keyOf(tenant, fingerprint));
    },
  };
}
