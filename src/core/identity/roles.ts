import { TENANT_ADMIN_SCOPES } from './scopes.ts';

/**
 * Roles: named bundles of scopes, given to users. A user's token carries the union of its roles'
 * scopes and nothing else, so a user with no role gets a token that opens nothing (least privilege).
 *
 * - `viewer`: reads the catalog, routing decisions and outcomes, the service info and the API docs; changes nothing.
 * - `developer`: a viewer who also uses the AI router: routes, invokes models and sends feedback.
 * - `operator`: a viewer who also runs the tenant's AI spend: budgets, and metrics.
 * - `admin`: every scope acting inside the tenant, identity administration included (users, keys,
 *   clients, devices), but none of OPERATOR_SCOPES: roles are given inside one tenant, and no
 *   tenant's admin reaches another tenant or the global model catalog.
 *
 * `admin` follows KNOWN_SCOPES (minus the operator's), so a scope added there reaches admins at once; the others name
 * their scopes one by one, so a new scope reaches them only when someone decides it should.
 */
const VIEWER = ['ai:models:read', 'ai:read', 'docs:read', 'service:read'] as const;

export const ROLES = {
  viewer: [...VIEWER],
  developer: [...VIEWER, 'ai:feedback', 'ai:invoke', 'ai:route'],
  operator: [...VIEWER, 'ai:budgets', 'metrics:read'],
  admin: [...TENANT_ADMIN_SCOPES],
} as const satisfies Record<string, readonly string[]>;

export type RoleName = keyof typeof ROLES;

export const ROLE_NAMES = Object.keys(ROLES) as RoleName[];

export const isRoleName = (name: string): name is RoleName => Object.hasOwn(ROLES, name);

/**
 * The scopes the given roles grant together, sorted. A name that is not a role grants nothing
 * (a role removed from this file takes its scopes away from users who still carry its name).
 */
export function scopesOfRoles(roles: readonly string[]): string[] {
  const scopes = new Set<string>();
  for (const role of roles) if (isRoleName(role)) for (const scope of ROLES[role]) scopes.add(scope);
  return [...scopes].sort();
}
