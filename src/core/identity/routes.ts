import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { DEFAULT_PAGE_SIZE, PageQuerySchema, ProblemSchema as Problem, pageSchemaOf } from '../../platform/http/schemas.ts';
import type { ApiKeys } from './api-keys.ts';
import type { ChangeContext } from './change-context.ts';
import { invalidIdentityInput, scopeNotGrantable, unknownScope } from './errors.ts';
import type { OAuthClients } from './oauth-clients.ts';
import { IDENTITY_ADMIN_SCOPE } from './scopes.ts';
import { ROLE_NAMES, type ScopeCatalog } from '../../platform/modules/scopes.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, type Users } from './users.ts';
import { FINGERPRINT, type Devices } from './devices.ts';

const Name = Type.String({ minLength: 1, maxLength: 100, description: 'A label for humans' });
const Scopes = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
  maxItems: 50,
  description: 'Scopes granted; none unless given (least privilege)',
});
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

const ApiKeyAnswer = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  expires_at: NullableTimestamp,
  last_used_at: NullableTimestamp,
  revoked_at: NullableTimestamp,
  created_at: Timestamp,
});
const CreatedApiKeyAnswer = Type.Object({
  ...ApiKeyAnswer.properties,
  key: Type.String({ description: 'The key itself: shown this once, never again' }),
});
const ClientAnswer = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  scopes: Type.Array(Type.String(), { description: 'What the client holds: its own scopes and what its roles grant' }),
  roles: Type.Array(Type.String(), {
    description: '`platform` (the operator, every scope) or `admin` (every tenant scope), given by Blocks',
  }),
  created_at: Timestamp,
  rotated_at: NullableTimestamp,
});
const ClientWithSecretAnswer = Type.Object({
  ...ClientAnswer.properties,
  client_secret: Type.String({ description: 'The secret: shown this once, never again' }),
});
const KeyParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const ClientParams = Type.Object({ client_id: Type.String({ minLength: 1, maxLength: 64 }) });
const IdParams = KeyParams;

/** The roles field, documented with what each role carries in this deployment. */
const rolesSchema = (scopes: ScopeCatalog) =>
  Type.Array(Type.Enum([...ROLE_NAMES]), {
    maxItems: ROLE_NAMES.length,
    description: `Roles, each a bundle of scopes (${Object.entries(scopes.roles)
      .map(([role, held]) => `${role}: ${held.join(' ')}`)
      .join('; ')}); none unless given (least privilege)`,
  });
const Password = Type.String({
  minLength: MIN_PASSWORD_LENGTH,
  maxLength: MAX_PASSWORD_LENGTH,
  description: `At least ${MIN_PASSWORD_LENGTH} characters; stored only as an argon2id hash`,
});
const UserAnswer = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String({ description: 'Lowercased: unique per tenant whatever the case typed' }),
  roles: Type.Array(Type.String()),
  scopes: Type.Array(Type.String(), { description: "What the user's roles grant together: the most a token of theirs carries" }),
  created_at: Timestamp,
});
const DeviceAnswer = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  fingerprint: Type.String(),
  created_at: Timestamp,
});

export interface IdentityRoutesOptions {
  readonly apiKeys: ApiKeys;
  readonly clients: OAuthClients;
  readonly users: Users;
  readonly devices: Devices;
  /** The registered modules' scopes and roles: what may be granted. */
  readonly scopes: ScopeCatalog;
}

/**
 * The identity admin API, mounted under `/api/v1/identity`. Every route acts for
 * `request.caller.tenant` only: another tenant's keys and clients answer 404, exactly as missing ones do.
 *
 * Beyond the route's scope (`identity:admin`), two rules keep a narrow admin from reaching past
 * what it holds, both answering 403 SCOPE_NOT_GRANTABLE:
 * - creation (keys, clients, users): the caller holds every scope it gives (checkScopes, checkRoles);
 * - acting on a principal (rotate a secret, reset a password, set roles, revoke, delete): the caller
 *   holds every scope the target holds, checked by the store with the target locked
 *   (requireActorHolds in change-context.ts, fed `actorScopes` below).
 * Reads change nothing and show no secret; devices hold no scopes, so identity:admin suffices for them.
 * test/core/identity/acting-on-principals.test.ts states and proves the rule of every route.
 */
export const identityRoutes: FastifyPluginAsync<IdentityRoutesOptions> = async (fastify, { apiKeys, clients, users, devices, scopes }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const Roles = rolesSchema(scopes);
  const checkScopes = (field: string, given: readonly string[], granter: readonly string[]): string[] =>
    grantableScopes(scopes, field, given, granter);
  const checkRoles = (field: string, roles: readonly string[], granter: readonly string[]): void =>
    grantableRoles(scopes, field, roles, granter);
  const config = { scope: IDENTITY_ADMIN_SCOPE };
  const tags = ['identity'];
  const context = (request: FastifyRequest): ChangeContext => ({
    correlationId: request.id,
    traceparent: request.trace.traceparent,
    actor: request.caller.subject,
    actorScopes: request.caller.scopes,
  });
  const pageSize = (limit: string | undefined): number => Number(limit ?? DEFAULT_PAGE_SIZE);

  app.post(
    '/api-keys',
    {
      config,
      schema: {
        summary: 'Create an API key; the answer carries the key, the only time it is shown',
        tags,
        body: Type.Object(
          {
            name: Name,
            scopes: Type.Optional(Scopes),
            expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'When the key stops working; never when absent' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: CreatedApiKeyAnswer, 400: Problem },
      },
    },
    async (request, reply) => {
      const { name, scopes = [], expires_at } = request.body;
      const created = await apiKeys.create(
        request.caller.tenant,
        {
          name,
          scopes: checkScopes('scopes', scopes, request.caller.scopes),
          expiresAt: expires_at === undefined ? null : dateOf('expires_at', expires_at),
        },
        context(request),
      );
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  );

  app.get(
    '/api-keys',
    {
      config,
      schema: {
        summary: "List the tenant's API keys (never the keys themselves)",
        tags,
        querystring: PageQuerySchema,
        response: { 200: pageSchemaOf(ApiKeyAnswer), 400: Problem },
      },
    },
    async (request) => apiKeys.list(request.caller.tenant, pageSize(request.query.limit), request.query.cursor),
  );

  app.get(
    '/api-keys/:id',
    {
      config,
      schema: { summary: 'One API key', tags, params: KeyParams, response: { 200: ApiKeyAnswer, 400: Problem, 404: Problem } },
    },
    async (request) => apiKeys.get(request.caller.tenant, request.params.id),
  );

  app.delete(
    '/api-keys/:id',
    {
      config,
      schema: {
        summary: 'Revoke an API key, at once on every replica (the record stays, with revoked_at)',
        tags,
        params: KeyParams,
        response: { 200: ApiKeyAnswer, 400: Problem, 404: Problem },
      },
    },
    async (request) => apiKeys.revoke(request.caller.tenant, request.params.id, context(request)),
  );

  app.post(
    '/clients',
    {
      config,
      schema: {
        summary: 'Create an OAuth client; the answer carries its secret, the only time it is shown',
        tags,
        body: Type.Object({ name: Name, scopes: Type.Optional(Scopes) }, { additionalProperties: false }),
        response: { 201: ClientWithSecretAnswer, 400: Problem },
      },
    },
    async (request, reply) => {
      const { name, scopes = [] } = request.body;
      const created = await clients.create(
        request.caller.tenant,
        { name, scopes: checkScopes('scopes', scopes, request.caller.scopes) },
        context(request),
      );
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  );

  app.get(
    '/clients',
    {
      config,
      schema: {
        summary: "List the tenant's OAuth clients (never their secrets)",
        tags,
        querystring: PageQuerySchema,
        response: { 200: pageSchemaOf(ClientAnswer), 400: Problem },
      },
    },
    async (request) => clients.list(request.caller.tenant, pageSize(request.query.limit), request.query.cursor),
  );

  app.get(
    '/clients/:client_id',
    {
      config,
      schema: { summary: 'One OAuth client', tags, params: ClientParams, response: { 200: ClientAnswer, 400: Problem, 404: Problem } },
    },
    async (request) => clients.get(request.caller.tenant, request.params.client_id),
  );

  app.post(
    '/clients/:client_id/rotate-secret',
    {
      config,
      schema: {
        summary: 'Give an OAuth client a new secret; the old one stops working at once',
        tags,
        params: ClientParams,
        response: { 200: ClientWithSecretAnswer, 400: Problem, 404: Problem },
      },
    },
    async (request, reply) =>
      reply
        .header('cache-control', 'no-store')
        .send(await clients.rotateSecret(request.caller.tenant, request.params.client_id, context(request))),
  );

  app.delete(
    '/clients/:client_id',
    {
      config,
      schema: { summary: 'Delete an OAuth client', tags, params: ClientParams, response: { 204: Type.Null(), 400: Problem, 404: Problem } },
    },
    async (request, reply) => {
      await clients.remove(request.caller.tenant, request.params.client_id, context(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/users',
    {
      config,
      schema: {
        summary: 'Create a user who signs in with email and password (password grant); the answer never carries the password',
        tags,
        body: Type.Object(
          { email: Type.String({ format: 'email', maxLength: 320 }), password: Password, roles: Type.Optional(Roles) },
          { additionalProperties: false },
        ),
        response: { 201: UserAnswer, 400: Problem, 409: Problem },
      },
    },
    async (request, reply) => {
      const { email, password, roles = [] } = request.body;
      checkRoles('roles', roles, request.caller.scopes);
      return reply.code(201).send(await users.create(request.caller.tenant, { email, password, roles }, context(request)));
    },
  );

  app.get(
    '/users',
    {
      config,
      schema: {
        summary: "List the tenant's users",
        tags,
        querystring: PageQuerySchema,
        response: { 200: pageSchemaOf(UserAnswer), 400: Problem },
      },
    },
    async (request) => users.list(request.caller.tenant, pageSize(request.query.limit), request.query.cursor),
  );

  app.get(
    '/users/:id',
    { config, schema: { summary: 'One user', tags, params: IdParams, response: { 200: UserAnswer, 400: Problem, 404: Problem } } },
    async (request) => users.get(request.caller.tenant, request.params.id),
  );

  app.put(
    '/users/:id/roles',
    {
      config,
      schema: {
        summary: "Replace a user's roles; tokens refreshed from now on carry only what the new roles grant",
        tags,
        params: IdParams,
        body: Type.Object({ roles: Roles }, { additionalProperties: false }),
        response: { 200: UserAnswer, 400: Problem, 404: Problem },
      },
    },
    async (request) => {
      checkRoles('roles', request.body.roles, request.caller.scopes);
      return users.setRoles(request.caller.tenant, request.params.id, request.body.roles, context(request));
    },
  );

  app.post(
    '/users/:id/password',
    {
      config,
      schema: {
        summary: "Reset a user's password; the user's refresh tokens stop working at once",
        tags,
        params: IdParams,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: { 204: Type.Null(), 400: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      await users.resetPassword(request.caller.tenant, request.params.id, request.body.password, context(request));
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/users/:id',
    {
      config,
      schema: {
        summary: 'Delete a user, with every refresh token it holds',
        tags,
        params: IdParams,
        response: { 204: Type.Null(), 400: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      await users.remove(request.caller.tenant, request.params.id, context(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/devices',
    {
      config,
      schema: {
        summary: 'Register a device, for tenants whose rules require a known one',
        tags,
        body: Type.Object(
          {
            name: Name,
            fingerprint: Type.String({
              pattern: FINGERPRINT.source,
              description:
                "The device id the device sends as x-blocks-device, or its client certificate's SHA-256 fingerprint (AB:CD:…, any case)",
            }),
          },
          { additionalProperties: false },
        ),
        response: { 201: DeviceAnswer, 400: Problem, 409: Problem },
      },
    },
    async (request, reply) => reply.code(201).send(await devices.register(request.caller.tenant, request.body, context(request))),
  );

  app.get(
    '/devices',
    {
      config,
      schema: {
        summary: "List the tenant's registered devices",
        tags,
        querystring: PageQuerySchema,
        response: { 200: pageSchemaOf(DeviceAnswer), 400: Problem },
      },
    },
    async (request) => devices.list(request.caller.tenant, pageSize(request.query.limit), request.query.cursor),
  );

  app.get(
    '/devices/:id',
    {
      config,
      schema: { summary: 'One registered device', tags, params: IdParams, response: { 200: DeviceAnswer, 400: Problem, 404: Problem } },
    },
    async (request) => devices.get(request.caller.tenant, request.params.id),
  );

  app.delete(
    '/devices/:id',
    {
      config,
      schema: {
        summary: 'Delete a device; every replica refuses it at once',
        tags,
        params: IdParams,
        response: { 204: Type.Null(), 400: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      await devices.remove(request.caller.tenant, request.params.id, context(request));
      return reply.code(204).send(null);
    },
  );
};

/** The scopes, deduplicated, when every one is known. @throws UNKNOWN_SCOPE naming the field */
/**
 * The scopes a new key or client may be given: known ones the granting caller holds itself. An
 * admin key narrowed to `identity:admin` must not mint a broader key than it is; and the operator's
 * scopes thereby stay with the operator.
 */
function grantableScopes(catalog: ScopeCatalog, field: string, scopes: readonly string[], granter: readonly string[]): string[] {
  const unknown = scopes.filter((scope) => !catalog.known.includes(scope));
  if (unknown.length > 0) throw unknownScope(field, unknown, catalog.known);
  const notHeld = scopes.filter((scope) => !granter.includes(scope));
  if (notHeld.length > 0) throw scopeNotGrantable(field, notHeld);
  return [...new Set(scopes)].sort();
}

/** A user may be given roles whose scopes the granting caller holds, as for keys and clients. */
function grantableRoles(catalog: ScopeCatalog, field: string, roles: readonly string[], granter: readonly string[]): void {
  const notHeld = catalog.scopesOfRoles(roles).filter((scope) => !granter.includes(scope));
  if (notHeld.length > 0) throw scopeNotGrantable(field, notHeld);
}

function dateOf(field: string, value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalidIdentityInput(field, `'${value}' is not a date-time`);
  return date;
}
