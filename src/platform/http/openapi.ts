import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { CLIENT_SCOPE, PUBLIC_SCOPE, UPSTREAM_SCOPE } from './access.ts';
import { IDEMPOTENCY_HEADER, MAX_KEY_LENGTH } from '../idempotency/plugin.ts';
import { withoutDefaultTextRule, type TextKind } from './control-characters.ts';

/**
 * OpenAPI 3.1 generated from the route schemas: the page at /docs, the document at /docs/json.
 * Each operation lists how to authenticate and the scope it needs, taken from the route's own
 * `config.scope`, so the document cannot drift from what the access hook enforces.
 */
export const swaggerPlugins = fp(async (app: FastifyInstance, options: { title: string; version: string; tags: readonly OpenApiTag[] }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: options.title,
        version: options.version,
        description:
          'Blocks API. Errors are RFC 9457 problem+json. Every operation but health (and, unless configured otherwise, ' +
          '/metrics and /docs) needs an access token from POST /oauth/token or an API key, holding the scope the operation names.',
      },
      tags: options.tags.map((tag) => ({ name: tag.name, description: tag.description })),
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT or API key', description: 'Access token, or an API key (bk_…)' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An API key (bk_…), shown once when created' },
          oauth2: {
            type: 'oauth2',
            flows: { clientCredentials: { tokenUrl: '/oauth/token', scopes: {} } },
            description: 'Tokens for OAuth clients; scopes as listed on each operation',
          },
        },
      },
    },
    transform: ({ schema: routeSchema, url, route }) => {
      const schema = withoutDefaultTextRules(routeSchema);
      const scope = route.config?.scope;
      if (scope === undefined || scope === PUBLIC_SCOPE || scope === CLIENT_SCOPE) return { schema: { ...schema, security: [] }, url };
      const scopes = scope === UPSTREAM_SCOPE ? [] : [scope];
      const security: Array<Record<string, string[]>> = [{ bearer: scopes }, { apiKey: scopes }, { oauth2: scopes }];
      const keyed = route.config?.idempotency !== false && [route.method].flat().some((method) => KEYED_METHODS.has(method));
      return { schema: { ...(keyed ? withIdempotencyKey(schema) : schema), security }, url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
});

/** A section of the document: one per module. */
export interface OpenApiTag {
  readonly name: string;
  readonly description: string;
}

/** Methods the idempotency layer covers for a caller with a credential (src/platform/idempotency/plugin.ts). */
const KEYED_METHODS = new Set(['POST', 'PATCH']);

const IDEMPOTENCY_KEY_HEADER = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_KEY_LENGTH,
  pattern: '^[\\x20-\\x7e]+$',
  description:
    'Makes a retry safe (draft-ietf-httpapi-idempotency-key-header): the first request with this key runs, and a retry ' +
    'with the same key and request gets its answer again, with `Idempotent-Replayed: true`, for `idempotency.window` ' +
    '(24 h). 409 IDEMPOTENCY_KEY_IN_USE while the first still runs; 422 IDEMPOTENCY_KEY_REUSED for the key with another ' +
    'request; 410 IDEMPOTENT_ANSWER_NOT_KEPT when the answer held a secret. 5xx answers and streams are not kept.',
};

/** The route schema as documented with the `Idempotency-Key` request header beside its own headers. */
function withIdempotencyKey<T extends { headers?: unknown }>(schema: T): T {
  const own = (schema.headers ?? { type: 'object', properties: {} }) as { properties?: Record<string, unknown> };
  return { ...schema, headers: { ...own, properties: { ...own.properties, [IDEMPOTENCY_HEADER]: IDEMPOTENCY_KEY_HEADER } } };
}

/** Where each part's control-character rule is the default one (see create-http-server.ts), which docs/security.md states once. */
const DEFAULT_TEXT_RULES: ReadonlyArray<readonly ['params' | 'querystring' | 'body', TextKind]> = [
  ['params', 'line'],
  ['querystring', 'line'],
  ['body', 'text'],
];

/** The route schema as documented: without an `x-text` on every string that only repeats the default. */
function withoutDefaultTextRules<T extends Partial<Record<'params' | 'querystring' | 'body', unknown>>>(schema: T): T {
  const documented = { ...schema };
  for (const [part, kind] of DEFAULT_TEXT_RULES)
    if (documented[part] !== undefined) documented[part] = withoutDefaultTextRule(documented[part], kind);
  return documented;
}
