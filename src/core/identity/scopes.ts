import type { ScopeDefinition } from '../../platform/modules/manifest.ts';

/** The scope every identity admin route needs. */
export const IDENTITY_ADMIN_SCOPE = 'identity:admin';

/** The platform operator's scope over tenants themselves. */
export const TENANTS_ADMIN_SCOPE = 'tenants:admin';

/**
 * Identity's scopes. Administration inside a tenant is the `admin` role's (which carries every
 * tenant scope by rule); tenants themselves are the platform operator's: no role carries that
 * scope, a new tenant's admin client does not get it, and like every scope it can be granted only
 * by a caller that holds it.
 */
export const IDENTITY_SCOPES: readonly ScopeDefinition[] = [
  { name: IDENTITY_ADMIN_SCOPE, description: "Manage the tenant's API keys, OAuth clients, users and devices" },
  { name: TENANTS_ADMIN_SCOPE, description: 'Create and list tenants', operator: true },
];
