import { hash as digest, randomUUID } from 'node:crypto';
import type { Clock } from '../../platform/clock.ts';
import type { Database } from '../../platform/db/port.ts';
import type { Logger } from '../../platform/logger.ts';
import { auditChange, ensureTenant, requireActorHolds, type ChangeContext } from './change-context.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';
import { apiKeyNotFound, invalidIdentityInput, scopeNotHeld } from './errors.ts';
import { hashApiKey, newApiKey, prefixOf } from './secrets.ts';

export const API_KEY_CREATED = 'identity.api_key.created';
/** Every replica drops the key from its cache on this event. */
export const API_KEY_REVOKED = 'identity.api_key.revoked';

/** An API key as the admin API shows it: never the key, never its hash. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  readonly prefix: string;
  readonly scopes: string[];
  readonly expires_at: string | null;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
  readonly created_at: string;
}

/** A new key: the only time the raw `key` is ever returned. */
export interface CreatedApiKey extends ApiKeyRecord {
  readonly key: string;
}

/** Who a verified key speaks for. */
export interface VerifiedApiKey {
  readonly tenant: string;
  readonly keyId: string;
  readonly scopes: readonly string[];
}

export interface ApiKeyPage {
  readonly items: ApiKeyRecord[];
  readonly next_cursor: string | null;
}

export interface ApiKeys {
  create(tenant: string, input: { name: string; scopes: string[]; expiresAt: Date | null }, context: ChangeContext): Promise<CreatedApiKey>;
  list(tenant: string, limit: number, cursor?: string): Promise<ApiKeyPage>;
  /** @throws API_KEY_NOT_FOUND, also for another tenant's key */
  get(tenant: string, id: string): Promise<ApiKeyRecord>;
  /**
   * Revokes at once here and, through `identity.api_key.revoked`, on every replica. Revoking twice is a no-op.
   * @throws API_KEY_NOT_FOUND; SCOPE_NOT_GRANTABLE when `context.actorScopes` lacks one of the key's scopes (revoked or not)
   */
  revoke(tenant: string, id: string, context: ChangeContext): Promise<ApiKeyRecord>;
  /**
   * The tenant, id and scopes of a raw key, or null when it is unknown, revoked or expired. A key
   * seen before costs one SHA-256 and one map lookup; the database is read on a miss.
   */
  verify(raw: string): Promise<VerifiedApiKey | null>;
  /** Drops a key from this replica's cache (the revocation consumer calls it). */
  forget(keyId: string): void;
  /** Writes the pending last-used times now (also done on a timer and at stop). */
  flushLastUsed(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export interface ApiKeysOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly logger: Logger;
  /** After a commit that wrote an event (wake the outbox relay). */
  readonly onEventAppended: () => void;
  /** The registered modules' scopes: whoever revokes a key must hold every known scope it holds. */
  readonly scopes: ScopeCatalog;
  /** A cached key is read again after this long, a backstop should a revocation event be lost. Default 60 s. */
  readonly cacheTtlMs?: number;
  /** Keys cached at most; the oldest go first. Default 10 000. */
  readonly cacheSize?: number;
  /** last_used_at is written at most this often per key. Default 60 s. */
  readonly lastUsedEveryMs?: number;
  /** How often pending last-used times are written. Default 10 s. */
  readonly flushEveryMs?: number;
}

interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

interface CachedKey extends VerifiedApiKey {
  readonly expiresAt: number | null;
  readonly loadedAt: number;
}

const COLUMNS = 'id, name, prefix, scopes, expires_at, last_used_at, revoked_at, created_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// bk_ + 43 base64url characters (32 bytes): anything else is refused before hashing or querying.
const RAW_KEY = /^bk_[A-Za-z0-9_-]{43}$/;

/** API keys: their SQL, the per-replica cache of verified keys and the batched last-used writes. */
export function createApiKeys(options: ApiKeysOptions): ApiKeys {
  const { db, clock, logger, onEventAppended } = options;
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  const cacheSize = options.cacheSize ?? 10_000;
  const lastUsedEveryMs = options.lastUsedEveryMs ?? 60_000;
  const flushEveryMs = options.flushEveryMs ?? 10_000;

  const cache = new Map<string, CachedKey>(); // by hex SHA-256 of the key
  const hashById = new Map<string, string>();
  // Bumped on every revocation: a database read that a revocation overtook is not cached.
  let revocations = 0;
  const recordedUse = new Map<string, number>();
  const pendingUse = new Map<string, number>();

  const getRow = async (tenant: string, id: string): Promise<ApiKeyRow> => {
    if (!UUID.test(id)) throw apiKeyNotFound(id);
    const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE tenant = $1 AND id = $2`, [tenant, id]);
    if (rows[0] === undefined) throw apiKeyNotFound(id);
    return rows[0];
  };

  const forget = (keyId: string): void => {
    revocations += 1;
    const hash = hashById.get(keyId);
    if (hash !== undefined) cache.delete(hash);
    hashById.delete(keyId);
    recordedUse.delete(keyId);
  };

  const markUsed = (keyId: string, now: number): void => {
    if (now - (recordedUse.get(keyId) ?? Number.NEGATIVE_INFINITY) < lastUsedEveryMs) return;
    recordedUse.set(keyId, now);
    pendingUse.set(keyId, now);
  };

  const flushLastUsed = async (): Promise<void> => {
    if (pendingUse.size === 0) return;
    const batch = [...pendingUse];
    pendingUse.clear();
    try {
      await db.query(
        `UPDATE api_keys SET last_used_at = GREATEST(COALESCE(api_keys.last_used_at, v.t), v.t)
         FROM (SELECT unnest($1::uuid[]) AS id, unnest($2::timestamptz[]) AS t) v
         WHERE api_keys.id = v.id`,
        [batch.map(([id]) => id), batch.map(([, at]) => new Date(at).toISOString())],
      );
    } catch (error) {
      // Kept for the next flush: a use is recorded late rather than lost.
      for (const [id, at] of batch) if (!pendingUse.has(id)) pendingUse.set(id, at);
      logger.warn({ err: error, keys: batch.length }, 'recording API key last use failed; retrying on the next flush');
    }
  };

  let flushing: AbortController | undefined;
  let flusher: Promise<void> | undefined;
  const flushLoop = async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) {
      try {
        await clock.sleep(flushEveryMs, signal);
      } catch {
        return; // stopped
      }
      await flushLastUsed();
    }
  };

  return {
    async create(tenant, input, context) {
      if (input.expiresAt !== null && input.expiresAt.getTime() <= clock.now())
        throw invalidIdentityInput('expires_at', 'must be in the future');
      const key = newApiKey();
      const id = randomUUID();
      const row = await db.transaction(async (tx) => {
        await ensureTenant(tx, tenant);
        const { rows } = await tx.query<ApiKeyRow>(
          `INSERT INTO api_keys (id, tenant, name, prefix, key_hash, scopes, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6::text[], $7) RETURNING ${COLUMNS}`,
          [id, tenant, input.name, prefixOf(key), hashApiKey(key), input.scopes, input.expiresAt?.toISOString() ?? null],
        );
        const created = rows[0] as ApiKeyRow;
        await auditChange(tx, API_KEY_CREATED, tenant, context, {
          key_id: id,
          name: created.name,
          prefix: created.prefix,
          scopes: created.scopes,
          expires_at: created.expires_at?.toISOString() ?? null,
        });
        return created;
      });
      onEventAppended();
      return { ...toRecord(row), key };
    },

    async list(tenant, limit, cursor) {
      if (cursor !== undefined && !UUID.test(cursor)) throw invalidIdentityInput('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<ApiKeyRow>(
        `SELECT ${COLUMNS} FROM api_keys WHERE tenant = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
        [tenant, cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
    },

    async get(tenant, id) {
      return toRecord(await getRow(tenant, id));
    },

    async revoke(tenant, id, context) {
      if (!UUID.test(id)) throw apiKeyNotFound(id);
      const { row, changed } = await db.transaction(async (tx) => {
        const { rows } = await tx.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE tenant = $1 AND id = $2 FOR UPDATE`, [
          tenant,
          id,
        ]);
        const current = rows[0];
        if (current === undefined) throw apiKeyNotFound(id);
        requireActorHolds(options.scopes, context, current.scopes, (notHeld) => scopeNotHeld(`API key '${id}'`, { id }, notHeld));
        if (current.revoked_at !== null) return { row: current, changed: false };
        const { rows: updated } = await tx.query<ApiKeyRow>(`UPDATE api_keys SET revoked_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [
          id,
        ]);
        await auditChange(tx, API_KEY_REVOKED, tenant, context, { key_id: id, name: current.name, prefix: current.prefix });
        return { row: updated[0] as ApiKeyRow, changed: true };
      });
      forget(id);
      if (changed) onEventAppended();
      return toRecord(row);
    },

    async verify(raw) {
      if (!RAW_KEY.test(raw)) return null;
      // One-shot digest: a createHash object costs several times the hashing itself, on every keyed request.
      const hash = digest('sha256', raw);
      const now = clock.now();
      let entry = cache.get(hash);
      if (entry !== undefined && now - entry.loadedAt >= cacheTtlMs) {
        cache.delete(hash);
        entry = undefined;
      }
      if (entry === undefined) {
        const seen = revocations;
        const { rows } = await db.query<{ id: string; tenant: string; scopes: string[]; expires_at: Date | null }>(
          'SELECT id, tenant, scopes, expires_at FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
          [Buffer.from(hash, 'hex')],
        );
        const row = rows[0];
        if (row === undefined) return null;
        entry = {
          tenant: row.tenant,
          keyId: row.id,
          scopes: Object.freeze([...row.scopes]),
          expiresAt: row.expires_at?.getTime() ?? null,
          loadedAt: now,
        };
        if (seen === revocations) {
          if (cache.size >= cacheSize) {
            const oldest = cache.keys().next().value;
            if (oldest !== undefined) {
              const dropped = cache.get(oldest);
              cache.delete(oldest);
              if (dropped) hashById.delete(dropped.keyId);
            }
          }
          cache.set(hash, entry);
          hashById.set(entry.keyId, hash);
        }
      }
      if (entry.expiresAt !== null && entry.expiresAt <= now) return null;
      markUsed(entry.keyId, now);
      return { tenant: entry.tenant, keyId: entry.keyId, scopes: entry.scopes };
    },

    forget,
    flushLastUsed,

    start() {
      flushing = new AbortController();
      flusher = flushLoop(flushing.signal);
    },
    async stop() {
      flushing?.abort();
      await flusher;
      flushing = undefined;
      await flushLastUsed();
    },
  };
}

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    expires_at: row.expires_at?.toISOString() ?? null,
    last_used_at: row.last_used_at?.toISOString() ?? null,
    revoked_at: row.revoked_at?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
  };
}
