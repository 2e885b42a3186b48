import { Type, type Static } from 'typebox';
import { createEgressPolicy, type EgressConfig, type EgressPolicy, type EgressPolicyOptions } from './egress.ts';

const Allow = Type.Array(Type.String({ minLength: 1 }));

/**
 * The kernel's `egress` section: where URLs that callers (not operators) set may point, for every
 * module that fetches one (AI deployments' base URLs, webhooks, MCP servers, workflow HTTP steps).
 */
export const EgressSection = Type.Object(
  {
    /** Lift the address checks altogether (one machine in development); http(s) only and no credentials still hold. */
    allow_private: Type.Boolean(),
    /** Host names (`llm.corp.example`, `*.corp.example`), addresses or CIDRs (`10.1.0.0/16`) reachable although not public. */
    allow: Allow,
  },
  { additionalProperties: false },
);

/**
 * A module's own `egress` (`<section>.egress`), put in its config schema as
 * `egress: Type.Optional(EgressOverride)`. When set it replaces the platform's policy for that
 * module entirely: a key it leaves out is the strict default (`allow_private: false`, `allow: []`),
 * never the platform's value, so an override reads completely on its own.
 */
export const EgressOverride = Type.Object(
  { allow_private: Type.Optional(Type.Boolean()), allow: Type.Optional(Allow) },
  { additionalProperties: false },
);
export type EgressOverride = Static<typeof EgressOverride>;

/** The platform's policy, and each module's. */
export interface PlatformEgress extends EgressPolicy {
  /**
   * The policy of `module`: made from `override` (its section's `egress`) when there is one, which
   * replaces the platform's for it; otherwise the platform's own. One policy per module, however
   * often it is asked for; each is closed with {@link PlatformEgress.close}.
   * @throws Error naming `<setting>.allow[i]` for an entry that is neither a host name nor an address or CIDR
   */
  of(module: string, override: EgressOverride | undefined, setting?: string): EgressPolicy;
}

/**
 * The platform's egress policy from the `egress` section, and the overrides modules ask for.
 * @throws Error naming `egress.allow[i]` for an entry that is neither a host name nor an address or CIDR
 */
export function createPlatformEgress(config: EgressConfig, options: Omit<EgressPolicyOptions, 'setting'> = {}): PlatformEgress {
  const platform = createEgressPolicy(config, { ...options, setting: 'egress' });
  const overrides = new Map<string, EgressPolicy>();
  return {
    get setting() {
      return platform.setting;
    },
    get dispatcher() {
      return platform.dispatcher;
    },
    checkUrl: (url) => platform.checkUrl(url),
    checkAddress: (host, address) => platform.checkAddress(host, address),
    of(module, override, setting = `${module}.egress`) {
      if (override === undefined) return platform;
      const existing = overrides.get(module);
      if (existing !== undefined) return existing;
      const policy = createEgressPolicy(
        { allow_private: override.allow_private ?? false, allow: override.allow ?? [] },
        { ...options, setting },
      );
      overrides.set(module, policy);
      return policy;
    },
    async close() {
      await Promise.all([platform, ...overrides.values()].map((policy) => policy.close()));
    },
  };
}

/**
 * The `egress` a module's configuration section carries, if any. The section's schema validated it
 * (`egress: Type.Optional(EgressOverride)`); a section whose schema has no such key cannot carry one.
 */
export function egressOverrideIn(section: unknown): EgressOverride | undefined {
  if (typeof section !== 'object' || section === null || !('egress' in section)) return undefined;
  return (section as { egress?: EgressOverride }).egress;
}
