import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Database } from '../../platform/db/port.ts';
import { DEFAULT_PAGE_SIZE, PageQuerySchema, ProblemSchema as Problem, pageSchemaOf } from '../../platform/http/schemas.ts';
import { auditChange, type ChangeContext } from './change-context.ts';
import { invalidIdentityInput, scopeNotGrantable, tenantExists, tenantNotFound } from './errors.ts';
import type { OAuthClients, OAuthClientWithSecret } from './oauth-clients.ts';
import { TENANTS_ADMIN_SCOPE } from './scopes.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';

export const TENANT_CREATED = 'identity.tenant.created';

export interface TenantRecord {
  readonly id: string;
  readonly name: string;
  readonly created_at: string;
}

/** A new tenant and its first admin client, whose secret is shown this once. */
export interface CreatedTenant extends TenantRecord {
  readonly admin_client: OAuthClientWithSecret;
}

export interface Tenants {
  /** @throws TENANT_EXISTS when the id is taken (also when two requests race for it: exactly one wins) */
  create(input: { id: string; name: string }, context: ChangeContext): Promise<CreatedTenant>;
  list(limit: number, cursor?: string): Promise<{ items: TenantRecord[]; next_cursor: string | null }>;
  /** @throws TENANT_NOT_FOUND */
  get(id: string): Promise<TenantRecord>;
}

const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * Tenants, for the platform's operators (scope `tenants:admin`). Everything else in identity acts
 * inside the caller's own tenant; this is the one place that sees across them, which is why its
 * scope is an operator scope, held by the first-start client and whoever it grants it to. A tenant's
 * first client has the `admin` role: every tenant scope, those of modules added later included.
 */
export function createTenants(options: { db: Database; clients: OAuthClients; onEventAppended: () => void }): Tenants {
  const { db, clients } = options;
  const toRecord = (row: { id: string; name: string; created_at: Date }): TenantRecord => ({
    id: row.id,
    name: row.name,
    created_at: row.created_at.toISOString(),
  });
  return {
    async create(input, context) {
      if (!TENANT_ID.test(input.id)) {
        throw invalidIdentityInput('id', "must be a lowercase id of letters, digits, '-' or '_' (at most 63 characters)");
      }
      const created = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ id: string; name: string; created_at: Date }>(
          'INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id, name, created_at',
          [input.id, input.name],
        );
        if (rows[0] === undefined) throw tenantExists(input.id);
        await auditChange(tx, TENANT_CREATED, input.id, context, { name: input.name });
        const adminClient = await clients.createIn(
          tx,
          input.id,
          { name: 'admin (created with the tenant)', scopes: [], roles: ['admin'] },
          context,
        );
        return { ...toRecord(rows[0]), admin_client: adminClient };
      });
      options.onEventAppended();
      return created;
    },
    async list(limit, cursor) {
      if (cursor !== undefined && !TENANT_ID.test(cursor)) throw invalidIdentityInput('cursor', 'is not a cursor this API returned');
      const { rows } = await db.query<{ id: string; name: string; created_at: Date }>(
        'SELECT id, name, created_at FROM tenants WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2',
        [cursor ?? null, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      return { items, next_cursor: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
    },
    async get(id) {
      const { rows } = await db.query<{ id: string; name: string; created_at: Date }>(
        'SELECT id, name, created_at FROM tenants WHERE id = $1',
        [id],
      );
      if (rows[0] === undefined) throw tenantNotFound(id);
      return toRecord(rows[0]);
    },
  };
}

const TenantAnswer = Type.Object({ id: Type.String(), name: Type.String(), created_at: Type.String({ format: 'date-time' }) });
const CreatedTenantAnswer = Type.Object({
  ...TenantAnswer.properties,
  admin_client: Type.Object({
    client_id: Type.String(),
    name: Type.String(),
    scopes: Type.Array(Type.String()),
    roles: Type.Array(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    rotated_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    client_secret: Type.String({ description: 'Shown this once, never again' }),
  }),
});

/** `/tenants` under the identity prefix: create (with a first admin client), list, read. */
export const tenantRoutes: FastifyPluginAsync<{ tenants: Tenants; scopes: ScopeCatalog }> = async (fastify, { tenants, scopes }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const config = { scope: TENANTS_ADMIN_SCOPE };
  const tags = ['identity'];

  app.post(
    '/tenants',
    {
      config,
      schema: {
        summary:
          'Create a tenant and its first admin client (every scope inside a tenant, which the caller must hold too); the answer carries the client secret, the only time it is shown',
        tags,
        body: Type.Object(
          { id: Type.String({ minLength: 1, maxLength: 63 }), name: Type.String({ minLength: 1, maxLength: 100 }) },
          { additionalProperties: false },
        ),
        response: { 201: CreatedTenantAnswer, 400: Problem, 409: Problem },
      },
    },
    async (request, reply) => {
      // The grant rule: the new tenant's admin client gets every tenant scope, so only a caller holding them makes one.
      const notHeld = scopes.scopesNotHeld(scopes.tenantAdmin, request.caller.scopes);
      if (notHeld.length > 0) throw scopeNotGrantable('admin_client.scopes', notHeld);
      const created = await tenants.create(request.body, {
        correlationId: request.id,
        traceparent: request.trace.traceparent,
        actor: request.caller.subject,
        actorScopes: request.caller.scopes,
      });
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  );

  app.get(
    '/tenants',
    {
      config,
      schema: { summary: 'List tenants', tags, querystring: PageQuerySchema, response: { 200: pageSchemaOf(TenantAnswer), 400: Problem } },
    },
    async (request) => tenants.list(Number(request.query.limit ?? DEFAULT_PAGE_SIZE), request.query.cursor),
  );

  app.get(
    '/tenants/:id',
    {
      config,
      schema: {
        summary: 'One tenant',
        tags,
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 63 }) }),
        response: { 200: TenantAnswer, 404: Problem },
      },
    },
    async (request) => tenants.get(request.params.id),
  );
};
