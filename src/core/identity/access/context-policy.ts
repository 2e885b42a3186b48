import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Config } from '../../../platform/config/schema.ts';
import type { ContextPolicy, RequestContext } from '../../../platform/http/access.ts';
import type { Caller } from '../../../platform/http/caller.ts';

/** Whether a device (id or certificate fingerprint) is registered for a tenant. */
export interface DeviceRegistry {
  readonly isRegistered: (tenant: string, fingerprint: string) => Promise<boolean>;
}

interface CompiledRules {
  readonly allow: BlockList | undefined;
  readonly deny: BlockList | undefined;
  readonly window: ((now: number) => boolean) | undefined;
  readonly requireDevice: boolean;
}

/**
 * The context half of the zero-trust decision: each tenant's `auth.tenants.<tenant>` rules on
 * source address, time of day and registered devices. A tenant without rules costs one map lookup.
 *
 * @throws Error at start for an address or time zone that does not parse, so a typo never opens a tenant up.
 */
export function createContextPolicy(tenants: Config['auth']['tenants'], devices: DeviceRegistry): ContextPolicy {
  const rules = new Map(Object.entries(tenants).map(([tenant, access]) => [tenant, compile(tenant, access)] as const));
  return {
    check(caller: Caller, context: RequestContext) {
      const tenantRules = rules.get(caller.tenant);
      if (tenantRules === undefined) return null;
      const ip = plainAddress(context.ip);
      const family = isIPv4(ip) ? 'ipv4' : 'ipv6';
      if (tenantRules.deny?.check(ip, family)) return 'ip_denied';
      if (tenantRules.allow && !tenantRules.allow.check(ip, family)) return 'ip_not_allowed';
      if (tenantRules.window && !tenantRules.window(context.now)) return 'outside_hours';
      if (!tenantRules.requireDevice) return null;
      const device = context.certificateFingerprint ?? context.deviceId;
      if (device === undefined) return 'device_required';
      return devices.isRegistered(caller.tenant, device).then((known) => (known ? null : 'device_unknown'));
    },
  };
}

function compile(tenant: string, access: Config['auth']['tenants'][string]): CompiledRules {
  return {
    allow: access.ip_allow ? blockListOf(`auth.tenants.${tenant}.ip_allow`, access.ip_allow) : undefined,
    deny: access.ip_deny ? blockListOf(`auth.tenants.${tenant}.ip_deny`, access.ip_deny) : undefined,
    window:
      access.hours || access.days ? timeWindow(`auth.tenants.${tenant}`, access.hours, access.days, access.time_zone ?? 'UTC') : undefined,
    requireDevice: access.require_device === true,
  };
}

function blockListOf(key: string, entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    const bits = prefix === undefined ? undefined : Number(prefix);
    const maxBits = family === 'ipv4' ? 32 : 128;
    if (family === undefined || (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > maxBits))) {
      throw new Error(`${key}: '${entry}' is not an IP address or CIDR`);
    }
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, bits, family);
  }
  return list;
}

/** `::ffff:10.0.0.1` (IPv4 on a dual-stack socket) is checked as `10.0.0.1`. */
const plainAddress = (ip: string): string => (ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip);

function timeWindow(
  key: string,
  hours: string | undefined,
  days: readonly string[] | undefined,
  timeZone: string,
): (now: number) => boolean {
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-GB', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  } catch {
    throw new Error(`${key}.time_zone: '${timeZone}' is not an IANA time zone`);
  }
  const [from, to] = (hours ?? '00:00-24:00').split('-').map(minutesOf) as [number, number];
  const allowedDays = days ? new Set<string>(days) : undefined;
  return (now) => {
    const parts = format.formatToParts(now);
    const part = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
    const day = part('weekday').toLowerCase().slice(0, 3);
    if (allowedDays && !allowedDays.has(day)) return false;
    const minute = Number(part('hour')) * 60 + Number(part('minute'));
    // A window past midnight (22:00-06:00) allows the evening and the morning.
    return from <= to ? minute >= from && minute < to : minute >= from || minute < to;
  };
}

const minutesOf = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
