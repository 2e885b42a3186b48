/** The scope every identity admin route needs. */
export const IDENTITY_ADMIN_SCOPE = 'identity:admin';

/**
 * The platform operator's scope: tenants themselves (the one thing seen across tenants). No role
 * carries it (src/core/identity/roles.ts): a tenant's own admin never reaches another tenant.
 */
export const TENANTS_ADMIN_SCOPE = 'tenants:admin';

/**
 * Scopes a key, client or user may be granted: the ones routes declare. A grant naming anything
 * else is refused, so a typo never silently grants nothing (or, later, something unintended).
 * Add a scope here when a route starts declaring it.
 */
export const KNOWN_SCOPES: readonly string[] = [
  'ai:budgets',
  'ai:feedback',
  'ai:invoke',
  'ai:models:read',
  'ai:models:write',
  'ai:read',
  'ai:route',
  'docs:read',
  IDENTITY_ADMIN_SCOPE,
  'metrics:read',
  'service:read',
  TENANTS_ADMIN_SCOPE,
];
