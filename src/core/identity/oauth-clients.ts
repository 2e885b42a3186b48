import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../../platform/db/port.ts';
import { auditChange, ensureTenant, requireActorHolds, type ChangeContext } from './change-context.ts';
import { invalidIdentityInput, oauthClientNotFound, scopeNotHeld } from './errors.ts';
import { createDecoyHash, hashPassword, newClientSecret, verifyPassword } from './secrets.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';

export const CLIENT_CREATED = 'identity.client.created';
export const CLIENT_SECRET_ROTATED = 'identity.client.secret_rotated';
export const CLIENT_DELETED = 'identity.client.deleted';

/** An OAuth client as the admin API shows it: never its secret or hash. */
export interface OAuthClientRecord {
  readonly client_id: string;
  readonly name: string;
  /** What the client holds: its own scopes and what its roles grant, sorted. */
  readonly scopes: string[];
  /** Roles the platform gave it (`platform` for the first-start client, `admin` for a tenant's first client). */
  readonly roles: string[];
  readonly created_at: string;
  readonly rotated_at: string | null;
}

/** A client with its secret: returned by create and rotate only, never stored. */
export interface OAuthClientWithSecret extends OAuthClientRecord {
  readonly client_secret: string;
}

/** Who an authenticated client is. */
export interface AuthenticatedClient {
  readonly tenant: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
}

export interface OAuthClientPage {
  readonly items: OAuthClientRecord[];
  readonly next_cursor: string | null;
}

export interface OAuthClients {
  create(tenant: string, input: { name: string; scopes: string[] }, context: ChangeContext): Promise<OAuthClientWithSecret>;
  /** Creates a client inside a transaction the caller owns (first start). */
  createIn(
    tx: Queryable,
    tenant: string,
    input: { name: string; scopes: string[]; roles?: string[] },
    context: ChangeContext,
  ): Promise<OAuthClientWithSecret>;
  list(tenant: string, limit: number, cursor?: string): Promise<OAuthClientPage>;
  /** @throws OAUTH_CLIENT_NOT_FOUND, also for another tenant's client */
  get(tenant: string, clientId: string): Promise<OAuthClientRecord>;
  /**
   * A new secret; the old one stops working at once.
   * @throws OAUTH_CLIENT_NOT_FOUND; SCOPE_NOT_GRANTABLE when `context.actorScopes` lacks one of the client's scopes
   */
  rotateSecret(tenant: string, clientId: string, context: ChangeContext): Promise<OAuthClientWithSecret>;
  /** @throws OAUTH_CLIENT_NOT_FOUND; SCOPE_NOT_GRANTABLE as for rotateSecret */
  remove(tenant: string, clientId: string, context: ChangeContext): Promise<void>;
  /**
   * The client when `secret` is its current secret, else null. An unknown client id costs the same
   * argon2id verification as a wrong secret, so timing tells nothing about which ids exist.
   */
  authenticate(clientId: string, secret: string): Promise<AuthenticatedClient | null>;
}

interface ClientRow {
  client_id: string;
  name: string;
  scopes: string[];
  roles: string[];
  created_at: Date;
  rotated_at: Date | null;
}

const COLUMNS = 'client_id, name, scopes, roles, created_at, rotated_at';
const CLIENT_ID = /^cl_[0-9a-f]{24}$/;
const MAX_SECRET_LENGTH = 256;

export function createOAuthClients(options: { db: Database; onEventAppended: () => void; scopes: ScopeCatalog }): OAuthClients {
  const { db, onEventAppended, scopes } = options;
  /** A client holds its own scopes and, by rule, what its roles grant today. */
  const held = (row: { scopes: readonly string[]; roles: readonly string[] }): string[] =>
    [...new Set([...row.scopes, ...scopes.scopesOfRoles(row.roles)])].sort();
  const toRecord = (row: ClientRow): OAuthClientRecord => ({
    client_id: row.client_id,
    name: row.name,
    scopes: held(row),
    roles: row.roles,
    created_at: row.created_at.toISOString(),
    rotated_at: row.rotated_at?.toISOString() ?? null,
  });
  let decoy: Promise<string> | undefined;

  const createIn = async (
    tx: Queryable,
    tenant: string,
    input: { name: string; scopes: string[]; roles?: string[] },
    context: ChangeContext,
  ): Promise<OAuthClientWithSecret> => {
    const clientId = `cl_${randomBytes(12).toString('hex')}`;
    const secret = newClientSecret();
    await ensureTenant(tx, tenant);
    const { rows } = await tx.query<ClientRow>(
      `INSERT INTO oauth_clients (client_id, tenant, name, secret_hash, scopes, roles) VALUES ($1, $2, $3, $4, $5::text[], $6::text[]) RETURNING ${COLUMNS}`,
      [clientId, tenant, input.name, await hashPassword(secret), input.scopes, input.roles ?? []],
    );
    const row = rows[0] as ClientRow;
    await auditChange(tx, CLIENT_CREATED, tenant, context, { client_id: clientId, name: row.name, scopes: row.scopes, roles: row.roles });
    return { ...toRecord(row), client_secret: secret };
  };

  /** The client's row locked for the change, once the caller may act on it. */
  const lockFor = async (tx: Queryable, tenant: string, clientId: string, context: ChangeContext): Promise<void> => {
    const { rows } = await tx.query<{ scopes: string[]; roles: string[] }>(
      'SELECT scopes, roles FROM oauth_clients WHERE tenant = $1 AND client_id = $2 FOR UPDATE',
      [tenant, clientId],
    );
    if (rows[0] === undefined) throw oauthClientNotFound(clientId);
    requireActorHolds(scopes, context, held(rows[0]), (notHeld) =>
      scopeNotHeld(`OAuth client '${clientId}'`, { client_id: clientId }, notHeld),
    );
  };

  return {
    createIn,

    async create(tenant, input, context) {
      const created = await db.transaction((tx) => createIn(tx, tenant, input, context));
      onEventAppended();
      return created;
    },

    async list(tenant, limit, cursor) {
      if (cursor !== undefined && !CLIENT_ID.test(cursor)) throw invalidIdentityInput('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<ClientRow>(
        `SELECT ${COLUMNS} FROM oauth_clients WHERE tenant = $1 AND ($2::text IS NULL OR client_id > $2) ORDER BY client_id LIMIT $3`,
        [tenant, cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      return { items, next_cursor: rows.length > limit ? (items.at(-1)?.client_id ?? null) : null };
    },

    async get(tenant, clientId) {
      const { rows } = await db.query<ClientRow>(`SELECT ${COLUMNS} FROM oauth_clients WHERE tenant = $1 AND client_id = $2`, [
        tenant,
        clientId,
      ]);
      if (rows[0] === undefined) throw oauthClientNotFound(clientId);
      return toRecord(rows[0]);
    },

    async rotateSecret(tenant, clientId, context) {
      const secret = newClientSecret();
      // Hashed before the transaction: 50 ms of argon2id should not hold a row lock.
      const hash = await hashPassword(secret);
      const row = await db.transaction(async (tx) => {
        // Whoever gets the new secret becomes the client: only a caller holding all it holds.
        await lockFor(tx, tenant, clientId, context);
        const { rows } = await tx.query<ClientRow>(
          `UPDATE oauth_clients SET secret_hash = $3, rotated_at = now() WHERE tenant = $1 AND client_id = $2 RETURNING ${COLUMNS}`,
          [tenant, clientId, hash],
        );
        if (rows[0] === undefined) throw oauthClientNotFound(clientId);
        await auditChange(tx, CLIENT_SECRET_ROTATED, tenant, context, { client_id: clientId });
        return rows[0];
      });
      onEventAppended();
      return { ...toRecord(row), client_secret: secret };
    },

    async remove(tenant, clientId, context) {
      await db.transaction(async (tx) => {
        await lockFor(tx, tenant, clientId, context);
        const { rowCount } = await tx.query('DELETE FROM oauth_clients WHERE tenant = $1 AND client_id = $2', [tenant, clientId]);
        if (rowCount === 0) throw oauthClientNotFound(clientId);
        await auditChange(tx, CLIENT_DELETED, tenant, context, { client_id: clientId });
      });
      onEventAppended();
    },

    async authenticate(clientId, secret) {
      const candidate = secret.length <= MAX_SECRET_LENGTH ? secret : '';
      const { rows } = CLIENT_ID.test(clientId)
        ? await db.query<{ tenant: string; secret_hash: string; scopes: string[]; roles: string[] }>(
            'SELECT tenant, secret_hash, scopes, roles FROM oauth_clients WHERE client_id = $1',
            [clientId],
          )
        : { rows: [] };
      const row = rows[0];
      const matches = await verifyPassword(candidate, row?.secret_hash ?? (await (decoy ??= createDecoyHash())));
      if (row === undefined || !matches || candidate !== secret) return null;
      return { tenant: row.tenant, clientId, scopes: Object.freeze(held(row)) };
    },
  };
}
