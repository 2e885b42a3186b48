import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The Redis Streams commands the Redis adapter needs beyond plain calls: Lua scripts for the
 * steps that must be atomic, and parsers for stream replies (which ioredis leaves untyped).
 */

/** A Lua script run by hash, loaded on first use (or after a server restart flushed it). */
export type RedisScript = (redis: Redis, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

export const defineScript = (lua: string): RedisScript => {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
};

/**
 * KEYS: stream, dedup key. ARGV: dedup window ms ('0' = no dedup), then field/value pairs.
 * Stores the entry unless the id was seen within the window; returns the entry id or nil.
 */
export const publishScript = defineScript(`
if ARGV[1] ~= '0' and not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
`);

/**
 * KEYS: stream. ARGV: group, consumer, entry id. Resets the entry's idle time (so no one
 * reclaims it) only while this consumer still owns it: renewing blindly would take back an
 * entry another subscriber already reclaimed. JUSTID leaves the delivery counter alone.
 */
export const extendScript = defineScript(`
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #owned == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`);

/** KEYS: stream. ARGV: group, consumer. Forgets a stopped reader unless it still owns entries (those must stay reclaimable). */
export const forgetReaderScript = defineScript(`
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #owned == 0 then redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return #owned
`);

/** One stream entry with its fields as a map. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, string>;
}

const asArray = (value: unknown, what: string): unknown[] => {
  if (!Array.isArray(value)) throw new Error(`Unexpected Redis reply for ${what}: ${JSON.stringify(value)}`);
  return value;
};

/** Parses `[[id, [field, value, ...]], ...]`; entries deleted meanwhile come back as nil fields and are skipped. */
export const parseEntries = (reply: unknown): StreamEntry[] =>
  asArray(reply, 'stream entries').flatMap((raw) => {
    const [id, flat] = asArray(raw, 'stream entry');
    if (typeof id !== 'string' || !Array.isArray(flat)) return [];
    const fields = new Map<string, string>();
    for (let index = 0; index + 1 < flat.length; index += 2) fields.set(String(flat[index]), String(flat[index + 1]));
    return [{ id, fields }];
  });

/** XREADGROUP reply for one stream: its entries, or none on a timeout. */
export const parseReadGroup = (reply: unknown): StreamEntry[] => {
  if (reply === null) return [];
  const [first] = asArray(reply, 'XREADGROUP');
  return parseEntries(asArray(first, 'XREADGROUP stream')[1] ?? []);
};

/** XAUTOCLAIM reply: the next cursor and the claimed entries. */
export const parseAutoClaim = (reply: unknown): { cursor: string; entries: StreamEntry[] } => {
  const [cursor, entries] = asArray(reply, 'XAUTOCLAIM');
  return { cursor: String(cursor), entries: parseEntries(entries ?? []) };
};

/** Extended XPENDING reply: delivery count by entry id. */
export const parseDeliveryCounts = (reply: unknown): Map<string, number> =>
  new Map(
    asArray(reply, 'XPENDING').map((row) => {
      const [id, , , count] = asArray(row, 'XPENDING row');
      return [String(id), Number(count)] as const;
    }),
  );

/** XINFO GROUPS reply: one group's last delivered id, or undefined when the group does not exist. */
export const parseLastDeliveredId = (reply: unknown, group: string): string | undefined => {
  for (const row of asArray(reply, 'XINFO GROUPS')) {
    const flat = asArray(row, 'XINFO GROUPS row');
    const info = new Map<string, unknown>();
    for (let index = 0; index + 1 < flat.length; index += 2) info.set(String(flat[index]), flat[index + 1]);
    if (info.get('name') === group) return String(info.get('last-delivered-id'));
  }
  return undefined;
};
