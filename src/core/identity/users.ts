import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '../../platform/db/port.ts';
import { isUniqueViolation } from '../../platform/db/errors.ts';
import { userExists, userNotFound } from './admin-errors.ts';
import { auditChange, ensureTenant, requireActorHolds, type ChangeContext } from './change-context.ts';
import { invalidIdentityInput, scopeNotHeld } from './errors.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';
import { ROLE_NAMES } from '../../platform/modules/scopes.ts';
import { createDecoyHash, hashPassword, verifyPassword } from './secrets.ts';
import type { ResourceOwner, UserAuthenticator } from './tokens/types.ts';

export const USER_CREATED = 'identity.user.created';
export const USER_ROLES_CHANGED = 'identity.user.roles_changed';
export const USER_PASSWORD_RESET = 'identity.user.password_reset';
export const USER_DELETED = 'identity.user.deleted';

/** NIST SP 800-63B asks for at least 8; 12 leaves argon2id a password worth protecting. */
export const MIN_PASSWORD_LENGTH = 12;
/** Longer passwords are refused: argon2id over megabytes would be a denial of service, not a password. */
export const MAX_PASSWORD_LENGTH = 1024;
const MAX_EMAIL_LENGTH = 320;

/** A user as the admin API shows it: never the password or its hash. */
export interface UserRecord {
  readonly id: string;
  readonly email: string;
  readonly roles: string[];
  /** What the user's roles grant together (src/core/identity/roles.ts). */
  readonly scopes: string[];
  readonly created_at: string;
}

export interface UserPage {
  readonly items: UserRecord[];
  readonly next_cursor: string | null;
}

export interface NewUser {
  readonly email: string;
  readonly password: string;
  readonly roles: readonly string[];
}

/** The tenant's users: the admin API's store, and the password check of the token endpoint. */
export interface Users extends UserAuthenticator {
  /** @throws USER_EXISTS for an email (in any case) the tenant has already; INVALID_IDENTITY_INPUT for a short password or unknown role */
  create(tenant: string, input: NewUser, context: ChangeContext): Promise<UserRecord>;
  list(tenant: string, limit: number, cursor?: string): Promise<UserPage>;
  /** @throws USER_NOT_FOUND, also for another tenant's user */
  get(tenant: string, id: string): Promise<UserRecord>;
  /**
   * Replaces the user's roles; tokens refreshed from now on carry only what the new roles grant.
   * (Whether the caller may give the new roles is the admin API's grant rule.)
   * @throws USER_NOT_FOUND; SCOPE_NOT_GRANTABLE when `context.actorScopes` lacks a scope the current roles grant
   */
  setRoles(tenant: string, id: string, roles: readonly string[], context: ChangeContext): Promise<UserRecord>;
  /** Sets a new password and ends the user's sessions (every refresh token). @throws USER_NOT_FOUND; SCOPE_NOT_GRANTABLE as for setRoles */
  resetPassword(tenant: string, id: string, password: string, context: ChangeContext): Promise<void>;
  /** Deletes the user and, with it, every refresh token it holds. @throws USER_NOT_FOUND; SCOPE_NOT_GRANTABLE as for setRoles */
  remove(tenant: string, id: string, context: ChangeContext): Promise<void>;
}

interface UserRow {
  id: string;
  email: string;
  roles: string[];
  created_at: Date;
}

const COLUMNS = 'id, email, roles, created_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Emails are compared lowercased and trimmed: `Ada@Example.com ` and `ada@example.com` are one user. */
export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

// NFC: the same password typed on two keyboards can arrive composed or decomposed (NIST SP 800-63B §5.1.1.2).
const normalizePassword = (password: string): string => password.normalize('NFC');

export function createUsers(options: { db: Database; onEventAppended: () => void; scopes: ScopeCatalog }): Users {
  const { scopesOfRoles, isRoleName } = options.scopes;
  const toRecord = (row: UserRow): UserRecord => recordOf(row, options.scopes);
  const { db, onEventAppended } = options;
  let decoy: Promise<string> | undefined;

  const checkPassword = (password: string): string => {
    // Counted in characters (code points), as NIST asks: an emoji is one, not two.
    if (Array.from(password).length < MIN_PASSWORD_LENGTH)
      throw invalidIdentityInput('password', `must be at least ${MIN_PASSWORD_LENGTH} characters`);
    if (password.length > MAX_PASSWORD_LENGTH) throw invalidIdentityInput('password', `must be at most ${MAX_PASSWORD_LENGTH} characters`);
    return normalizePassword(password);
  };

  const checkRoles = (roles: readonly string[]): string[] => {
    const unknown = roles.filter((role) => !isRoleName(role));
    if (unknown.length > 0) {
      throw invalidIdentityInput('roles', `unknown role ${unknown.map((r) => `'${r}'`).join(', ')}; roles are ${ROLE_NAMES.join(', ')}`);
    }
    return [...new Set(roles)].sort();
  };

  const getRow = async (tenant: string, id: string): Promise<UserRow> => {
    if (!UUID.test(id)) throw userNotFound(id);
    const { rows } = await db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE tenant = $1 AND id = $2`, [tenant, id]);
    if (rows[0] === undefined) throw userNotFound(id);
    return rows[0];
  };

  /**
   * The user's row locked for the change, once the caller may act on it: it must hold every scope
   * the user's roles grant (the most any token of the user carries, whichever client signs it in).
   */
  const lockFor = async (tx: Queryable, tenant: string, id: string, context: ChangeContext): Promise<UserRow> => {
    const { rows } = await tx.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE tenant = $1 AND id = $2 FOR UPDATE`, [tenant, id]);
    const current = rows[0];
    if (current === undefined) throw userNotFound(id);
    requireActorHolds(options.scopes, context, scopesOfRoles(current.roles), (notHeld) => scopeNotHeld(`User '${id}'`, { id }, notHeld));
    return current;
  };

  return {
    async create(tenant, input, context) {
      const email = normalizeEmail(input.email);
      if (email === '' || email.length > MAX_EMAIL_LENGTH || !email.includes('@'))
        throw invalidIdentityInput('email', 'is not an email address');
      const roles = checkRoles(input.roles);
      // Hashed before the transaction: 50 ms of argon2id should not hold a connection.
      const hash = await hashPassword(checkPassword(input.password));
      const id = randomUUID();
      let row: UserRow;
      try {
        row = await db.transaction(async (tx) => {
          await ensureTenant(tx, tenant);
          const { rows } = await tx.query<UserRow>(
            `INSERT INTO users (id, tenant, email, password_hash, roles) VALUES ($1, $2, $3, $4, $5::text[]) RETURNING ${COLUMNS}`,
            [id, tenant, email, hash, roles],
          );
          const created = rows[0] as UserRow;
          await auditChange(tx, USER_CREATED, tenant, context, { user_id: id, email, roles });
          return created;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw userExists(email);
        throw error;
      }
      onEventAppended();
      return toRecord(row);
    },

    async list(tenant, limit, cursor) {
      if (cursor !== undefined && !UUID.test(cursor)) throw invalidIdentityInput('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<UserRow>(
        `SELECT ${COLUMNS} FROM users WHERE tenant = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
        [tenant, cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
    },

    async get(tenant, id) {
      return toRecord(await getRow(tenant, id));
    },

    async setRoles(tenant, id, roles, context) {
      const wanted = checkRoles(roles);
      if (!UUID.test(id)) throw userNotFound(id);
      const { row, changed } = await db.transaction(async (tx) => {
        const current = await lockFor(tx, tenant, id, context);
        if (current.roles.join(' ') === wanted.join(' ')) return { row: current, changed: false };
        const { rows: updated } = await tx.query<UserRow>(`UPDATE users SET roles = $2::text[] WHERE id = $1 RETURNING ${COLUMNS}`, [
          id,
          wanted,
        ]);
        await auditChange(tx, USER_ROLES_CHANGED, tenant, context, {
          user_id: id,
          email: current.email,
          roles: wanted,
          previous_roles: current.roles,
        });
        return { row: updated[0] as UserRow, changed: true };
      });
      if (changed) onEventAppended();
      return toRecord(row);
    },

    async resetPassword(tenant, id, password, context) {
      const hash = await hashPassword(checkPassword(password));
      if (!UUID.test(id)) throw userNotFound(id);
      await db.transaction(async (tx) => {
        // Whoever sets the password signs in as the user: only a caller holding all its roles grant.
        await lockFor(tx, tenant, id, context);
        const { rows } = await tx.query<{ email: string }>(
          'UPDATE users SET password_hash = $3 WHERE tenant = $1 AND id = $2 RETURNING email',
          [tenant, id, hash],
        );
        if (rows[0] === undefined) throw userNotFound(id);
        // Whoever knew the old password may hold a session from it: every refresh token of the user goes.
        const { rowCount } = await tx.query('DELETE FROM refresh_tokens WHERE user_id = $1', [id]);
        await auditChange(tx, USER_PASSWORD_RESET, tenant, context, { user_id: id, email: rows[0].email, ended_refresh_tokens: rowCount });
      });
      onEventAppended();
    },

    async remove(tenant, id, context) {
      if (!UUID.test(id)) throw userNotFound(id);
      await db.transaction(async (tx) => {
        await lockFor(tx, tenant, id, context);
        // Its refresh tokens go with it (ON DELETE CASCADE, identity migration 0009).
        const { rows } = await tx.query<{ email: string }>('DELETE FROM users WHERE tenant = $1 AND id = $2 RETURNING email', [tenant, id]);
        if (rows[0] === undefined) throw userNotFound(id);
        await auditChange(tx, USER_DELETED, tenant, context, { user_id: id, email: rows[0].email });
      });
      onEventAppended();
    },

    async authenticate(tenant, username, password): Promise<ResourceOwner | null> {
      const email = normalizeEmail(username);
      const tooLong = password.length > MAX_PASSWORD_LENGTH;
      const { rows } =
        email.length <= MAX_EMAIL_LENGTH
          ? await db.query<{ id: string; password_hash: string; roles: string[] }>(
              'SELECT id, password_hash, roles FROM users WHERE tenant = $1 AND email = $2',
              [tenant, email],
            )
          : { rows: [] };
      const row = rows[0];
      // An unknown user costs the same argon2id verification as a wrong password.
      const matches = await verifyPassword(
        tooLong ? '' : normalizePassword(password),
        row?.password_hash ?? (await (decoy ??= createDecoyHash())),
      );
      if (row === undefined || !matches || tooLong) return null;
      return { userId: row.id, tenant, scopes: Object.freeze(scopesOfRoles(row.roles)) };
    },

    async find(tenant, userId) {
      if (!UUID.test(userId)) return null;
      const { rows } = await db.query<{ roles: string[] }>('SELECT roles FROM users WHERE tenant = $1 AND id = $2', [tenant, userId]);
      const row = rows[0];
      return row === undefined ? null : { userId, tenant, scopes: Object.freeze(scopesOfRoles(row.roles)) };
    },
  };
}

function recordOf(row: UserRow, scopes: ScopeCatalog): UserRecord {
  return {
    id: row.id,
    email: row.email,
    roles: row.roles,
    scopes: scopes.scopesOfRoles(row.roles),
    created_at: row.created_at.toISOString(),
  };
}
