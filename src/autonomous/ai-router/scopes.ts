import type { ScopeDefinition } from '../../platform/modules/manifest.ts';

/** Writes to the model catalog, which every tenant's routing reads. */
export const MODELS_WRITE_SCOPE = 'ai:models:write';

/**
 * The AI router's scopes. Reading is every viewer's; using the router (route, invoke, feedback) is a
 * developer's; spend is an operator's. The catalog is global: a tenant able to edit it could point a
 * deployment at its own server and read every tenant's prompts, so writing it is the platform operator's.
 */
export const AI_SCOPES: readonly ScopeDefinition[] = [
  { name: 'ai:read', description: 'Read routing decisions, outcomes and statistics', roles: ['viewer'] },
  { name: 'ai:models:read', description: 'Read the model catalog', roles: ['viewer'] },
  { name: 'ai:route', description: 'Ask the router for a routing decision', roles: ['developer'] },
  { name: 'ai:invoke', description: 'Call models through the proxy (/v1/chat/completions)', roles: ['developer'] },
  { name: 'ai:feedback', description: 'Report the outcome of a routed call', roles: ['developer'] },
  { name: 'ai:budgets', description: "Set and read the tenant's budgets and usage", roles: ['operator'] },
  { name: MODELS_WRITE_SCOPE, description: 'Add, change and remove models of the global catalog', operator: true },
];
