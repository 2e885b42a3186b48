/** The scope every identity admin route needs. */
export const IDENTITY_ADMIN_SCOPE = 'identity:admin';

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
];
