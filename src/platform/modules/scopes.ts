import type { RoleName, ScopeDefinition } from './manifest.ts';
import { ACT_FOR_SCOPE } from '../http/delegation.ts';

export const ROLE_NAMES: readonly RoleName[] = ['viewer', 'developer', 'operator', 'admin'];

/**
 * The scopes the registered modules define, and what each role carries. Built once per registry
 * from the manifests, so a module that lands brings its scopes and its role grants with it.
 */
export interface ScopeCatalog {
  readonly definitions: readonly ScopeDefinition[];
  /** Every scope a key, client or user may be granted, sorted. A grant naming anything else is refused. */
  readonly known: readonly string[];
  /** Scopes reaching beyond one tenant: held by the platform operator's client, carried by no role. */
  readonly operator: readonly string[];
  /** Every scope acting inside one tenant: what the `admin` role and each tenant's admin client hold. */
  readonly tenantAdmin: readonly string[];
  readonly roles: Readonly<Record<RoleName, readonly string[]>>;
  /**
   * The scopes the given roles grant together, sorted. A name that is not a role grants nothing
   * (a role removed takes its scopes away from users who still carry its name).
   */
  readonly scopesOfRoles: (roles: readonly string[]) => string[];
  /**
   * The scopes of `target` that `holder` lacks, sorted: empty when the holder holds every one. Only
   * known scopes count: a scope no module defines any more opens nothing, so it protects nothing.
   */
  readonly scopesNotHeld: (target: readonly string[], holder: readonly string[]) => string[];
  readonly isRoleName: (name: string) => name is RoleName;
}

/**
 * The principal roles a client may carry besides the user roles: `platform` is the operator's
 * (every scope, operator scopes included), given only to the first-start client.
 */
export const PLATFORM_ROLE = 'platform';

/** The role of a service identity (a process of a split deployment calling another): acting for callers, nothing of its own. */
export const SERVICE_ROLE = 'service';

/** @throws Error for a scope defined twice or a definition naming an unknown role */
export function createScopeCatalog(definitions: readonly ScopeDefinition[]): ScopeCatalog {
  const seen = new Set<string>();
  for (const definition of definitions) {
    if (seen.has(definition.name)) throw new Error(`scope ${definition.name} is defined by two modules`);
    seen.add(definition.name);
    if (definition.operator && definition.roles?.length) {
      throw new Error(`scope ${definition.name} is an operator scope: no role may carry it`);
    }
  }
  const known = [...seen].sort();
  const operator = definitions.filter((d) => d.operator).map((d) => d.name);
  const tenantAdmin = known.filter((scope) => !operator.includes(scope));
  const carried = (role: Exclude<RoleName, 'admin'>): string[] =>
    definitions
      .filter((d) => d.roles?.includes(role))
      .map((d) => d.name)
      .sort();
  const roles: Record<RoleName, readonly string[]> = {
    viewer: carried('viewer'),
    developer: [...new Set([...carried('viewer'), ...carried('developer')])].sort(),
    operator: [...new Set([...carried('viewer'), ...carried('operator')])].sort(),
    admin: tenantAdmin,
  };
  const isRoleName = (name: string): name is RoleName => Object.hasOwn(roles, name);
  return {
    definitions,
    known,
    operator,
    tenantAdmin,
    roles,
    isRoleName,
    scopesOfRoles: (names) => {
      const scopes = new Set<string>();
      for (const name of names) {
        if (name === PLATFORM_ROLE) for (const scope of known) scopes.add(scope);
        else if (name === SERVICE_ROLE) scopes.add(ACT_FOR_SCOPE);
        else if (isRoleName(name)) for (const scope of roles[name]) scopes.add(scope);
      }
      return [...scopes].sort();
    },
    scopesNotHeld: (target, holder) => {
      return [...new Set(target.filter((scope) => seen.has(scope) && !holder.includes(scope)))].sort();
    },
  };
}
