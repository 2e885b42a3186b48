import { randomUUID } from 'node:crypto';
import type { Database } from '../../platform/db/port.ts';
import { isUniqueViolation } from '../../platform/db/errors.ts';
import { deviceExists, deviceNotFound } from './admin-errors.ts';
import { auditChange, ensureTenant, type ChangeContext } from './change-context.ts';
import { invalidIdentityInput } from './errors.ts';

export const DEVICE_REGISTERED = 'identity.device.registered';
/** Every replica forgets the device on this event, so a deleted device is refused at once everywhere. */
export const DEVICE_DELETED = 'identity.device.deleted';

/** A registered device: a tenant requiring devices (`auth.tenants.<tenant>.require_device`) lets only these in. */
export interface DeviceRecord {
  readonly id: string;
  readonly name: string;
  /** A device id (sent as `x-blocks-device`) or a client certificate's SHA-256 fingerprint. */
  readonly fingerprint: string;
  readonly created_at: string;
}

export interface DevicePage {
  readonly items: DeviceRecord[];
  readonly next_cursor: string | null;
}

export interface Devices {
  /** @throws DEVICE_EXISTS when the tenant has that fingerprint already */
  register(tenant: string, input: { name: string; fingerprint: string }, context: ChangeContext): Promise<DeviceRecord>;
  list(tenant: string, limit: number, cursor?: string): Promise<DevicePage>;
  /** @throws DEVICE_NOT_FOUND, also for another tenant's device */
  get(tenant: string, id: string): Promise<DeviceRecord>;
  /** Refused at once here and, through `identity.device.deleted`, on every replica. @throws DEVICE_NOT_FOUND */
  remove(tenant: string, id: string, context: ChangeContext): Promise<void>;
}

export interface DevicesOptions {
  readonly db: Database;
  readonly onEventAppended: () => void;
  /** After a device was registered or deleted here: drop what this replica's registry remembers of it. */
  readonly onChanged: (tenant: string, fingerprint: string) => void;
}

interface DeviceRow {
  id: string;
  name: string;
  fingerprint: string;
  created_at: Date;
}

const COLUMNS = 'id, name, fingerprint, created_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Printable ASCII without spaces: what a header carries unchanged. */
export const FINGERPRINT = /^[\x21-\x7e]{1,255}$/;
const CERTIFICATE_SHA256 = /^[0-9a-f]{2}(:[0-9a-f]{2}){31}$/i;

/**
 * A client certificate's SHA-256 fingerprint in the form the TLS socket reports it (`AB:CD:…`,
 * upper case), whatever case it was typed in; a device id unchanged.
 */
export const normalizeFingerprint = (fingerprint: string): string =>
  CERTIFICATE_SHA256.test(fingerprint) ? fingerprint.toUpperCase() : fingerprint;

export function createDevices(options: DevicesOptions): Devices {
  const { db, onEventAppended, onChanged } = options;

  const getRow = async (tenant: string, id: string): Promise<DeviceRow> => {
    if (!UUID.test(id)) throw deviceNotFound(id);
    const { rows } = await db.query<DeviceRow>(`SELECT ${COLUMNS} FROM devices WHERE tenant = $1 AND id = $2`, [tenant, id]);
    if (rows[0] === undefined) throw deviceNotFound(id);
    return rows[0];
  };

  return {
    async register(tenant, input, context) {
      if (!FINGERPRINT.test(input.fingerprint)) {
        throw invalidIdentityInput('fingerprint', 'must be 1 to 255 printable ASCII characters without spaces');
      }
      const fingerprint = normalizeFingerprint(input.fingerprint);
      const id = randomUUID();
      let row: DeviceRow;
      try {
        row = await db.transaction(async (tx) => {
          await ensureTenant(tx, tenant);
          const { rows } = await tx.query<DeviceRow>(
            `INSERT INTO devices (id, tenant, fingerprint, name) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
            [id, tenant, fingerprint, input.name],
          );
          await auditChange(tx, DEVICE_REGISTERED, tenant, context, { device_id: id, name: input.name, fingerprint });
          return rows[0] as DeviceRow;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw deviceExists(fingerprint);
        throw error;
      }
      // A replica that was asked about this device before remembers "unknown" for a while: the event clears that.
      onChanged(tenant, fingerprint);
      onEventAppended();
      return toRecord(row);
    },

    async list(tenant, limit, cursor) {
      if (cursor !== undefined && !UUID.test(cursor)) throw invalidIdentityInput('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<DeviceRow>(
        `SELECT ${COLUMNS} FROM devices WHERE tenant = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
        [tenant, cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
    },

    async get(tenant, id) {
      return toRecord(await getRow(tenant, id));
    },

    async remove(tenant, id, context) {
      if (!UUID.test(id)) throw deviceNotFound(id);
      const fingerprint = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ fingerprint: string; name: string }>(
          'DELETE FROM devices WHERE tenant = $1 AND id = $2 RETURNING fingerprint, name',
          [tenant, id],
        );
        const deleted = rows[0];
        if (deleted === undefined) throw deviceNotFound(id);
        await auditChange(tx, DEVICE_DELETED, tenant, context, { device_id: id, name: deleted.name, fingerprint: deleted.fingerprint });
        return deleted.fingerprint;
      });
      onChanged(tenant, fingerprint);
      onEventAppended();
    },
  };
}

function toRecord(row: DeviceRow): DeviceRecord {
  return { id: row.id, name: row.name, fingerprint: row.fingerprint, created_at: row.created_at.toISOString() };
}
