import { defineModule } from './modules/manifest.ts';
import { ACT_FOR_SCOPE } from './http/delegation.ts';
import { KERNEL_MIGRATIONS_DIR } from './db/migrate.ts';
import { httpErrors } from './http/errors.ts';
import { contentTypeErrors } from './http/content-type-errors.ts';
import { busErrors } from './bus/errors.ts';
import { CACHE_ERRORS } from './cache/errors.ts';
import { RESILIENCE_ERRORS } from './resilience/errors.ts';
import { RATE_LIMIT_ERRORS } from './rate-limit/errors.ts';
import { secretErrors } from './secrets/errors.ts';
import { idempotencyErrors } from './idempotency/errors.ts';
import { serviceClientErrors } from './clients/errors.ts';

/**
 * The kernel as a module: the scopes of what every process serves (service info, /metrics, /docs),
 * the error codes of the HTTP layer and the ports, and the tables of the outbox, the in-process bus
 * and idempotency keys. The registry puts it first; it runs nothing of its own.
 */
export const kernelModule = defineModule({
  name: 'platform',
  service: 'core',
  description: 'Health, metrics, the API documentation and service information, served by every process',
  scopes: [
    { name: 'service:read', description: 'Read which service answers, its modules and effective settings', roles: ['viewer'] },
    { name: 'docs:read', description: 'Read the OpenAPI document (when not public)', roles: ['viewer'] },
    { name: 'metrics:read', description: 'Read Prometheus metrics (when not public)', roles: ['operator'] },
    // The service identities' (role `service`): never a tenant's, so never granted by a tenant's admin.
    { name: ACT_FOR_SCOPE, description: 'Act for a caller of a tenant, within what that caller holds (split deployments)', operator: true },
  ],
  errors: [
    httpErrors,
    contentTypeErrors,
    busErrors,
    CACHE_ERRORS,
    RESILIENCE_ERRORS,
    RATE_LIMIT_ERRORS,
    secretErrors,
    idempotencyErrors,
    serviceClientErrors,
  ],
  migrations: KERNEL_MIGRATIONS_DIR,
  create: () => ({}),
});
