import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { isIP, isIPv4, isIPv6, type LookupFunction } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/** What an address is, by the IANA special-purpose registries; only `public` ones are reachable by default. */
export type AddressKind = 'public' | 'loopback' | 'private' | 'link_local' | 'unspecified' | 'multicast' | 'reserved';

/** `egress` in the configuration (or a module's override of it): where URLs that callers set may point. */
export interface EgressConfig {
  /** Lift the address checks altogether (one machine in development); scheme and credential checks stay. */
  readonly allow_private: boolean;
  /** Host names (`llm.corp.example`, `*.corp.example`), addresses or CIDRs (`10.1.0.0/16`, `fd00::/8`) reachable although not public. */
  readonly allow: readonly string[];
}

/** A connection refused by the egress policy, after DNS resolution or for an address written in the URL. */
export class EgressRefusedError extends Error {
  readonly host: string;
  /** Why, for logs and operators: e.g. `loopback address 127.0.0.1`. */
  readonly reason: string;

  constructor(host: string, reason: string) {
    super(`egress to ${host} refused: ${reason}`);
    this.name = 'EgressRefusedError';
    this.host = host;
    this.reason = reason;
  }
}

/** The refusal behind `error`, which undici may have wrapped. */
export const egressRefusalOf = (error: unknown): EgressRefusedError | undefined =>
  error instanceof EgressRefusedError
    ? error
    : error instanceof Error && error.cause instanceof EgressRefusedError
      ? error.cause
      : undefined;

type Resolve = (hostname: string, options: LookupAllOptions, callback: (error: Error | null, addresses: LookupAddress[]) => void) => void;

export interface EgressPolicy {
  /**
   * Why `url` may not be fetched, as far as can be told without resolving it, or null: it must be
   * http(s), carry no credentials, and an address or `localhost` name in it must be allowed. A
   * host name is judged at connect time ({@link EgressPolicy.dispatcher}), after resolution.
   */
  checkUrl(url: string): string | null;
  /** Why connecting to `address` (which `host` resolved to) is refused, or null. */
  checkAddress(host: string, address: string): string | null;
  /**
   * An undici dispatcher whose every connection is checked after DNS resolution, against the very
   * address it then connects to: a name that resolved to a public address when the URL was written
   * and to 127.0.0.1 now (DNS rebinding) is refused. Fails a request with {@link EgressRefusedError}.
   */
  readonly dispatcher: Dispatcher;
  /** The setting this policy comes from (`egress`, `ai.egress`), as its refusals name it. */
  readonly setting: string;
  /** Closes the dispatcher's connections, if it was ever used. */
  close(): Promise<void>;
}

export interface EgressPolicyOptions {
  /** DNS resolution (tests give names addresses of their own); the system resolver by default. */
  readonly resolve?: Resolve;
  /** The setting the policy comes from, named in errors and refusals; `egress` by default. */
  readonly setting?: string;
}

/**
 * The egress policy for URLs the platform fetches that callers (not operators) can set: public
 * addresses only, unless `config` allows more. Addresses are classified on their bytes, so every
 * spelling of one (IPv4-mapped IPv6, 6to4, NAT64, the numeric forms the URL parser normalises) is
 * judged as the IPv4 address it reaches.
 *
 * @throws Error at construction for an `allow` entry that is neither a host name nor an address or CIDR.
 */
export function createEgressPolicy(config: EgressConfig, options: EgressPolicyOptions = {}): EgressPolicy {
  const setting = options.setting ?? 'egress';
  const allowedNets = config.allow.flatMap((entry, i) => {
    const net = parseCidr(entry);
    if (net === undefined && !HOST_PATTERN.test(entry))
      throw new Error(`${setting}.allow[${i}]: '${entry}' is not a host name, address or CIDR`);
    return net === undefined ? [] : [net];
  });
  const allowedHosts = config.allow.filter((entry) => parseCidr(entry) === undefined).map((entry) => entry.toLowerCase());
  const hostAllowed = (host: string): boolean => {
    const name = normalHost(host);
    return allowedHosts.some((pattern) => (pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern));
  };

  const checkAddress = (host: string, address: string): string | null => {
    if (config.allow_private || hostAllowed(host)) return null;
    const bytes = bytesOf(address);
    if (bytes === undefined) return `'${address}' is not an IP address`;
    const kind = kindOf(bytes);
    if (kind === 'public') return null;
    const reached = embeddedIPv4(bytes) ?? bytes;
    if (allowedNets.some((net) => inNet(reached, net) || inNet(bytes, net))) return null;
    return `${kind.replace('_', '-')} address ${address}`;
  };

  const resolve: Resolve = options.resolve ?? ((hostname, lookupOptions, callback) => dnsLookup(hostname, lookupOptions, callback));

  const lookup: LookupFunction = (hostname, lookupOptions: LookupOptions, callback) => {
    resolve(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      for (const { address } of addresses) {
        const refusal = checkAddress(hostname, address);
        if (refusal !== null) return callback(new EgressRefusedError(hostname, `${hostname} resolves to a ${refusal}`), '', 0);
      }
      const first = addresses[0];
      if (first === undefined) return callback(new Error(`${hostname} resolves to no address`), '', 0);
      if (lookupOptions.all === true) return callback(null, addresses);
      return callback(null, first.address, first.family);
    });
  };

  let dispatcher: Dispatcher | undefined;
  const dispatcherOf = (): Dispatcher => {
    if (dispatcher) return dispatcher;
    const connectVia = buildConnector({ lookup });
    dispatcher = new Agent({
      connect: (connectOptions, callback) => {
        // An address in the URL is connected to without any lookup: it is checked here instead.
        if (isIP(connectOptions.hostname) !== 0) {
          const refusal = checkAddress(connectOptions.hostname, connectOptions.hostname);
          if (refusal !== null) {
            callback(new EgressRefusedError(connectOptions.hostname, refusal), null);
            return;
          }
        }
        connectVia(connectOptions, callback);
      },
    });
    return dispatcher;
  };

  return {
    setting,
    checkAddress,
    async close() {
      await dispatcher?.close();
    },
    checkUrl(url) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return 'is not a URL';
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `must be an http or https URL (got ${parsed.protocol})`;
      if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials (user:password@)';
      const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
      if (isIP(host) !== 0) {
        const refusal = checkAddress(host, host);
        return refusal === null ? null : `points at a ${refusal}; ${setting} allows public addresses only`;
      }
      const name = normalHost(host);
      // RFC 6761: these names are loopback whatever a resolver says, so they are refused before any lookup.
      if ((name === 'localhost' || name.endsWith('.localhost')) && !config.allow_private && !hostAllowed(name)) {
        return `names a loopback host (${name}); ${setting} allows public addresses only`;
      }
      return null;
    },
    get dispatcher() {
      return dispatcherOf();
    },
  };
}

/** `*.corp.example`, `llm.corp.example`, `ollama`: what an `allow` entry that is not an address may be. */
const HOST_PATTERN = /^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$/;

const normalHost = (host: string): string => host.toLowerCase().replace(/\.$/, '');

interface Net {
  readonly bytes: readonly number[];
  readonly bits: number;
}

function parseCidr(entry: string): Net | undefined {
  const [address = '', prefix, extra] = entry.split('/');
  if (extra !== undefined) return undefined;
  const bytes = bytesOf(address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address);
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) return undefined;
  return { bytes, bits };
}

function inNet(bytes: readonly number[], net: Net): boolean {
  if (bytes.length !== net.bytes.length) return false;
  for (let bit = 0; bit < net.bits; bit += 8) {
    const left = Math.min(8, net.bits - bit);
    const mask = (0xff << (8 - left)) & 0xff;
    const i = bit / 8;
    if (((bytes[i] ?? 0) & mask) !== ((net.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4, 16 for IPv6 (a zone id, `%eth0`, is dropped); undefined for anything else. */
export function bytesOf(address: string): number[] | undefined {
  if (isIPv4(address)) return address.split('.').map(Number);
  const plain = address.replace(/%.*$/, '');
  if (!isIPv6(plain)) return undefined;
  let text = plain.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const headGroups = groupsOf(head);
  const tailGroups = tail === undefined ? [] : groupsOf(tail);
  const zeros = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : zeros).fill('0'), ...tailGroups];
  if (groups.length !== 8) return undefined;
  return groups.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
}

/** The IPv4 address an IPv6 one stands for (IPv4-mapped, NAT64 well-known prefix, 6to4), if any. */
function embeddedIPv4(bytes: readonly number[]): number[] | undefined {
  if (bytes.length !== 16) return undefined;
  const startsWith = (prefix: readonly number[]): boolean => prefix.every((value, i) => bytes[i] === value);
  if (startsWith([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]) || startsWith([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0])) {
    return bytes.slice(12, 16);
  }
  if (startsWith([0x20, 0x02])) return bytes.slice(2, 6);
  return undefined;
}

/** The kind of an address given as bytes (see {@link bytesOf}). */
export function kindOf(bytes: readonly number[]): AddressKind {
  return bytes.length === 4 ? kindOfIPv4(bytes) : kindOfIPv6(bytes);
}

/** What an address (text) is; `reserved` for anything that is not an IP address. */
export const classifyAddress = (address: string): AddressKind => {
  const bytes = bytesOf(address);
  return bytes === undefined ? 'reserved' : kindOf(bytes);
};

function kindOfIPv4([a = 0, b = 0, c = 0]: readonly number[]): AddressKind {
  if (a === 0) return 'unspecified'; // 0.0.0.0/8, "this network"
  if (a === 127) return 'loopback';
  if (a === 10 || (a === 172 && (b & 0xf0) === 16) || (a === 192 && b === 168)) return 'private'; // RFC 1918
  if (a === 100 && (b & 0xc0) === 64) return 'private'; // 100.64.0.0/10, carrier-grade NAT
  if (a === 169 && b === 254) return 'link_local'; // includes 169.254.169.254, the cloud metadata service
  if (a >= 224 && a < 240) return 'multicast';
  if (a >= 240) return 'reserved'; // 240.0.0.0/4 and the broadcast address
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved'; // protocol assignments, TEST-NET-1
  if ((a === 192 && b === 88 && c === 99) || (a === 198 && (b & 0xfe) === 18)) return 'reserved'; // 6to4 relay, benchmarking
  if ((a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113)) return 'reserved'; // TEST-NET-2, -3
  return 'public';
}

function kindOfIPv6(bytes: readonly number[]): AddressKind {
  const embedded = embeddedIPv4(bytes);
  if (embedded !== undefined) return kindOfIPv4(embedded);
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = bytes;
  if (bytes.every((value) => value === 0)) return 'unspecified';
  if (bytes.slice(0, 15).every((value) => value === 0) && bytes[15] === 1) return 'loopback';
  if ((b0 & 0xfe) === 0xfc) return 'private'; // fc00::/7, unique local
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return 'link_local'; // fe80::/10
  if (b0 === 0xfe && (b1 & 0xc0) === 0xc0) return 'private'; // fec0::/10, the old site-local
  if (b0 === 0xff) return 'multicast';
  // Global unicast is 2000::/3; inside it, 2001::/23 (protocol assignments, Teredo) and 2001:db8::/32 (documentation) are not.
  if ((b0 & 0xe0) !== 0x20) return 'reserved';
  if (b0 === 0x20 && b1 === 0x01 && (b2 < 0x02 || (b2 === 0x0d && b3 === 0xb8))) return 'reserved';
  return 'public';
}
