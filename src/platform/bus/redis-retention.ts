import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import type { BusErrorListener } from './dispatcher.ts';
import { defineScript } from './redis-streams.ts';

/**
 * What the Redis adapter's stream keeps, and for how long: ephemeral consumer groups (registered
 * with a deadline their subscriber keeps pushing forward, destroyed when it stops or once the
 * deadline passes) and trimming the entries no group needs any more. Every step is one Lua
 * script, so concurrent processes doing the same housekeeping cannot interleave.
 *
 * Deadlines are Redis' own time (`TIME`), so processes whose clocks disagree agree on them.
 */

/** The keys housekeeping touches: the stream, consumer → pattern, ephemeral group → deadline (ms). */
export interface RetentionKeys {
  readonly stream: string;
  readonly consumers: string;
  readonly ephemeral: string;
}

const retentionKeys = (keys: RetentionKeys): string[] => [keys.stream, keys.consumers, keys.ephemeral];

/** Lua helper: Redis' time in milliseconds. */
const LUA_NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Lua helper: destroys the ephemeral groups past their deadline. */
const LUA_SWEEP = `${LUA_NOW}
local function sweep(stream, consumers, ephemeral)
  local expired = redis.call('ZRANGEBYSCORE', ephemeral, '-inf', string.format('%.0f', now_ms()))
  for _, group in ipairs(expired) do
    -- pcall: the stream itself may be gone, and with it the group.
    redis.pcall('XGROUP', 'DESTROY', stream, group)
    redis.call('HDEL', consumers, group)
    redis.call('ZREM', ephemeral, group)
  end
  return #expired
end
`;

/**
 * KEYS: stream, consumers, ephemeral. ARGV: group, subject pattern, timeout ms. Sweeps expired
 * groups first (so a dead subscriber's group is not reused under its name), then creates the
 * group at `$` and registers it. Replies `{'ok'}`, `{'subject', existing}` or `{'durable'}`.
 */
const registerScript = defineScript(`${LUA_SWEEP}
sweep(KEYS[1], KEYS[2], KEYS[3])
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing and existing ~= ARGV[2] then return {'subject', existing} end
if existing and not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return {'durable'} end
local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
if type(created) == 'table' and created.err and not string.find(created.err, '^BUSYGROUP') then
  return redis.error_reply(created.err)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], string.format('%.0f', now_ms() + tonumber(ARGV[3])), ARGV[1])
return {'ok'}
`);

/** KEYS: ephemeral. ARGV: group, timeout ms. Pushes the deadline forward; 0 when the group is no longer registered. */
const touchScript = defineScript(`${LUA_NOW}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%.0f', now_ms() + tonumber(ARGV[2])), ARGV[1])
return 1
`);

/** KEYS: stream, consumers, ephemeral. ARGV: group. Destroys the group if it is still a registered ephemeral one. */
const dropScript = defineScript(`
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
redis.pcall('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`);

/** KEYS: stream, consumers, ephemeral. Destroys every ephemeral group past its deadline; replies how many. */
const sweepScript = defineScript(`${LUA_SWEEP}
return sweep(KEYS[1], KEYS[2], KEYS[3])
`);

/**
 * KEYS: stream. ARGV: max age ms (0: none). Deletes the entries before the lowest one some group
 * still needs: its oldest pending entry, or else the one after its last delivered id. With no
 * group, nothing is needed (a group created later starts at '$'). A max age moves the floor up
 * to entries younger than that, needed or not. Replies how many entries were deleted.
 */
const trimScript = defineScript(`${LUA_NOW}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local floor_ms, floor_seq
local function lower(ms, seq)
  if floor_ms == nil or ms < floor_ms or (ms == floor_ms and seq < floor_seq) then floor_ms, floor_seq = ms, seq end
end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #row, 2 do info[row[i]] = row[i + 1] end
  if tonumber(info['pending']) > 0 then
    -- Pending entries were delivered, so they all lie at or before the last delivered id.
    local ms, seq = parse(redis.call('XPENDING', KEYS[1], info['name'])[2])
    lower(ms, seq)
  else
    local ms, seq = parse(info['last-delivered-id'])
    lower(ms, seq + 1)
  end
end
local max_age = tonumber(ARGV[1])
if max_age > 0 then
  local oldest = now_ms() - max_age
  if floor_ms == nil or oldest > floor_ms then floor_ms, floor_seq = oldest, 0 end
end
if floor_ms == nil then return redis.call('XTRIM', KEYS[1], 'MAXLEN', '0') end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-%.0f', floor_ms, floor_seq))
`);

/** Why an ephemeral group could not be registered under its name. */
export type RegisterConflict = { readonly conflict: 'subject'; readonly existing: string } | { readonly conflict: 'durable' };

/** Creates (or joins) an ephemeral group with a deadline `timeoutMs` from now; a conflict when the name is taken otherwise. */
export async function registerEphemeralGroup(
  redis: Redis,
  keys: RetentionKeys,
  group: string,
  subject: string,
  timeoutMs: number,
): Promise<RegisterConflict | undefined> {
  const [outcome, existing] = (await registerScript(redis, retentionKeys(keys), [group, subject, timeoutMs])) as [string, string?];
  if (outcome === 'subject') return { conflict: 'subject', existing: existing ?? '' };
  if (outcome === 'durable') return { conflict: 'durable' };
  return undefined;
}

/** Pushes an ephemeral group's deadline `timeoutMs` from now; false when it was removed meanwhile (and must be registered again). */
export async function touchEphemeralGroup(redis: Redis, keys: RetentionKeys, group: string, timeoutMs: number): Promise<boolean> {
  return (await touchScript(redis, [keys.ephemeral], [group, timeoutMs])) === 1;
}

/** Destroys an ephemeral group and forgets it; a group no longer registered as ephemeral is left alone. */
export async function dropEphemeralGroup(redis: Redis, keys: RetentionKeys, group: string): Promise<void> {
  await dropScript(redis, retentionKeys(keys), [group]);
}

/** Destroys the ephemeral groups whose subscribers stopped signing of life; returns how many. */
export async function sweepEphemeralGroups(redis: Redis, keys: RetentionKeys): Promise<number> {
  return Number(await sweepScript(redis, retentionKeys(keys), []));
}

/**
 * Deletes the stream entries every group has acked (and, with `maxAgeMs` > 0, entries older than
 * that whether acked or not); returns how many. An entry pending in a group, or not yet delivered
 * to it, is kept.
 */
export async function trimStream(redis: Redis, keys: RetentionKeys, maxAgeMs = 0): Promise<number> {
  return Number(await trimScript(redis, [keys.stream], [maxAgeMs]));
}

export interface MaintenanceOptions {
  readonly redis: Redis;
  readonly keys: RetentionKeys;
  /** Pause between passes; 0 runs none. */
  readonly intervalMs: number;
  readonly maxAgeMs: number;
  readonly clock: Clock;
  readonly onError: BusErrorListener;
}

/**
 * Every `intervalMs`, destroys expired ephemeral groups, then trims the stream. Each process
 * running a bus does it; the scripts make that safe. A failed pass is reported and the next one
 * runs on schedule. `stop` resolves once no pass is running.
 */
export function startMaintenance(options: MaintenanceOptions): { stop(): Promise<void> } {
  const { redis, keys, intervalMs, maxAgeMs, clock, onError } = options;
  const stopper = new AbortController();
  const loop = (async () => {
    if (intervalMs === 0) return;
    for (;;) {
      try {
        await clock.sleep(intervalMs, stopper.signal);
      } catch (error) {
        if (stopper.signal.aborted) return;
        throw error;
      }
      try {
        await sweepEphemeralGroups(redis, keys);
        await trimStream(redis, keys, maxAgeMs);
      } catch (error) {
        onError(error, { stage: 'maintenance' });
      }
    }
  })();
  return {
    stop: async () => {
      stopper.abort();
      await loop;
    },
  };
}
