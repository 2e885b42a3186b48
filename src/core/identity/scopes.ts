/** The scope every identity admin route needs. */
export const IDENTITY_ADMIN_SCOPE = 'identity:admin';

/** The platform operator's scope over tenants themselves. */
export const TENANTS_ADMIN_SCOPE = 'tenants:admin';

/** Writes to the model catalog, which every tenant's routing reads. */
export const MODELS_WRITE_SCOPE = 'ai:models:write';

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
  MODELS_WRITE_SCOPE,
  'ai:read',
  'ai:route',
  'docs:read',
  IDENTITY_ADMIN_SCOPE,
  'metrics:read',
  'service:read',
  TENANTS_ADMIN_SCOPE,
];

/**
 * Scopes whose routes reach beyond the caller's tenant: tenants themselves, and the global model
 * catalog (a tenant able to edit it could point a deployment at its own server and read every
 * tenant's prompts). They belong to the platform operator: no role carries them
 * (src/core/identity/roles.ts), a new tenant's admin client does not get them, and like every scope
 * they can be granted only by a caller that holds them.
 */
export const OPERATOR_SCOPES: readonly string[] = [TENANTS_ADMIN_SCOPE, MODELS_WRITE_SCOPE];

/**
 * The scopes of `target` that `holder` lacks, sorted: empty when the holder holds every one. Only
 * known scopes count: a scope no route declares any more opens nothing, so it protects nothing.
 * Both rules of identity use it: nobody grants a scope they lack (creation), and nobody changes,
 * takes over or removes a principal holding a scope they lack (src/core/identity/change-context.ts).
 */
export function scopesNotHeld(target: readonly string[], holder: readonly string[]): string[] {
  return [...new Set(target.filter((scope) => KNOWN_SCOPES.includes(scope) && !holder.includes(scope)))].sort();
}

/** What a tenant's admin holds: every scope acting inside the tenant. */
export const TENANT_ADMIN_SCOPES: readonly string[] = KNOWN_SCOPES.filter((scope) => !OPERATOR_SCOPES.includes(scope));
