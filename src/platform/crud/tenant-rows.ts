import type { Database, Queryable } from '../db/port.ts';
import { appendEvent, newEventId } from '../events/index.ts';
import { raise } from '../define-errors.ts';
import { httpErrors } from '../http/errors.ts';

/** Who made a change, carried into its event. */
export interface ChangeOrigin {
  readonly correlationId: string;
  readonly traceparent?: string | undefined;
  /** The caller's key id or token subject; null for the platform itself. */
  readonly actor?: string | null | undefined;
}

/** A stored row as the API shows it: the module's fields, its id and times. */
export type TenantRow<Fields> = Fields & { readonly id: string; readonly created_at: string; readonly updated_at: string };

export interface TenantRowPage<Fields> {
  readonly items: TenantRow<Fields>[];
  readonly next_cursor: string | null;
}

/**
 * One tenant-owned table: every statement names the tenant, so one tenant's rows are another's
 * 404, exactly as missing ones. Ids are UUID v7 (time-ordered), which makes them the cursor too.
 */
export interface TenantRows<Fields extends Record<string, unknown>> {
  create(tenant: string, fields: Fields, origin: ChangeOrigin): Promise<TenantRow<Fields>>;
  /** Inside a transaction the caller owns (with its own writes beside it). */
  createIn(tx: Queryable, tenant: string, fields: Fields, origin: ChangeOrigin): Promise<TenantRow<Fields>>;
  get(tenant: string, id: string): Promise<TenantRow<Fields> | null>;
  /** @throws INVALID_CURSOR for a cursor this list did not issue */
  list(tenant: string, page: { limit: number; cursor?: string | undefined }): Promise<TenantRowPage<Fields>>;
  /** The row after the change; null when the tenant has no such row. */
  update(tenant: string, id: string, patch: Partial<Fields>, origin: ChangeOrigin): Promise<TenantRow<Fields> | null>;
  /** Whether a row was removed. */
  remove(tenant: string, id: string, origin: ChangeOrigin): Promise<boolean>;
}

export interface TenantRowsOptions<Fields extends Record<string, unknown>> {
  readonly db: Database;
  /** A table with `id uuid PRIMARY KEY, tenant text NOT NULL, created_at timestamptz, updated_at timestamptz` and the columns. */
  readonly table: string;
  /** The module's columns; object and array values are stored as jsonb. */
  readonly columns: ReadonlyArray<Extract<keyof Fields, string>>;
  /**
   * Each change becomes `<type>.created|updated|deleted` (payload: tenant, id and, but for deletes,
   * the row) in the change's transaction; none when absent.
   */
  readonly events?: { readonly type: string; readonly source: string };
  /** After a commit that wrote an event (wake the outbox relay). */
  readonly onEventAppended?: () => void;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The SQL of a tenant-owned resource, written once for every module that keeps rows per tenant.
 * @throws Error for a table or column name that is not a plain identifier (they are spliced into SQL)
 */
export function createTenantRows<Fields extends Record<string, unknown>>(options: TenantRowsOptions<Fields>): TenantRows<Fields> {
  const { db, table, columns, events } = options;
  for (const name of [table, ...columns]) if (!IDENTIFIER.test(name)) throw new Error(`'${name}' is not a plain SQL identifier`);
  const selected = ['id', ...columns, 'created_at', 'updated_at'].join(', ');
  const toRow = (row: Record<string, unknown>): TenantRow<Fields> => {
    const out: Record<string, unknown> = { id: row.id };
    for (const column of columns) out[column] = row[column];
    out.created_at = (row.created_at as Date).toISOString();
    out.updated_at = (row.updated_at as Date).toISOString();
    return out as TenantRow<Fields>;
  };
  const param = (value: unknown): unknown =>
    value !== null && typeof value === 'object' && !(value instanceof Date) ? JSON.stringify(value) : value;
  const emit = async (tx: Queryable, change: 'created' | 'updated' | 'deleted', tenant: string, payload: object, origin: ChangeOrigin) => {
    if (events === undefined) return false;
    await appendEvent(tx, {
      event_type: `${events.type}.${change}`,
      source_service: events.source,
      payload: { tenant, ...payload, actor: origin.actor ?? null },
      correlation_id: origin.correlationId,
      traceparent: origin.traceparent,
    });
    return true;
  };
  const notify = (wrote: boolean): void => {
    if (wrote) options.onEventAppended?.();
  };

  const createIn = async (tx: Queryable, tenant: string, fields: Fields, origin: ChangeOrigin): Promise<TenantRow<Fields>> => {
    // Only the fields given: a column left out takes its default in the table, not NULL.
    const given = columns.filter((column) => fields[column] !== undefined);
    const placeholders = given.map((_, index) => `, $${index + 3}`).join('');
    const { rows } = await tx.query(
      `INSERT INTO ${table} (id, tenant${given.map((column) => `, ${column}`).join('')}) VALUES ($1, $2${placeholders}) RETURNING ${selected}`,
      [newEventId(), tenant, ...given.map((column) => param(fields[column]))],
    );
    const row = toRow(rows[0] as Record<string, unknown>);
    await emit(tx, 'created', tenant, { id: row.id, row }, origin);
    return row;
  };

  return {
    createIn,
    async create(tenant, fields, origin) {
      const row = await db.transaction((tx) => createIn(tx, tenant, fields, origin));
      notify(events !== undefined);
      return row;
    },
    async get(tenant, id) {
      if (!UUID.test(id)) return null;
      const { rows } = await db.query(`SELECT ${selected} FROM ${table} WHERE tenant = $1 AND id = $2`, [tenant, id]);
      return rows[0] === undefined ? null : toRow(rows[0]);
    },
    async list(tenant, page) {
      if (page.cursor !== undefined && !UUID.test(page.cursor)) {
        throw raise(httpErrors, 'INVALID_CURSOR', `Cursor '${page.cursor}' was not issued by this list`);
      }
      const { rows } = await db.query(
        `SELECT ${selected} FROM ${table} WHERE tenant = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3`,
        [tenant, page.cursor ?? null, page.limit + 1],
      );
      const items = rows.slice(0, page.limit).map(toRow);
      return { items, next_cursor: rows.length > page.limit ? (items.at(-1)?.id ?? null) : null };
    },
    async update(tenant, id, patch, origin) {
      if (!UUID.test(id)) return null;
      const changed = columns.filter((column) => patch[column] !== undefined);
      const row = await db.transaction(async (tx) => {
        const sets = changed.map((column, index) => `${column} = $${index + 3}`);
        const { rows } = await tx.query(
          `UPDATE ${table} SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE tenant = $1 AND id = $2 RETURNING ${selected}`,
          [tenant, id, ...changed.map((column) => param(patch[column]))],
        );
        if (rows[0] === undefined) return null;
        const updated = toRow(rows[0]);
        await emit(tx, 'updated', tenant, { id, row: updated }, origin);
        return updated;
      });
      notify(row !== null && events !== undefined);
      return row;
    },
    async remove(tenant, id, origin) {
      if (!UUID.test(id)) return false;
      const removed = await db.transaction(async (tx) => {
        const { rowCount } = await tx.query(`DELETE FROM ${table} WHERE tenant = $1 AND id = $2`, [tenant, id]);
        if (rowCount === 0) return false;
        await emit(tx, 'deleted', tenant, { id }, origin);
        return true;
      });
      notify(removed && events !== undefined);
      return removed;
    },
  };
}
