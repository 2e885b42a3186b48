import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static, type TObject } from 'typebox';
import { BlocksError } from '../errors.ts';
import { DEFAULT_PAGE_SIZE, PageQuerySchema, ProblemSchema as Problem, pageSchemaOf } from '../http/schemas.ts';
import type { ChangeOrigin, TenantRows } from './tenant-rows.ts';

/**
 * What a route of a tenant-owned resource tells the inventory (route `config.tenantResource`):
 * the tenant-isolation test creates one as one tenant with `example` and proves another cannot reach it.
 */
export interface TenantResourceMarker {
  /** The collection's path, as registered (`/api/v1/collaborative/example/notes`). */
  readonly collection: string;
  /** A body the create route accepts. */
  readonly example: Readonly<Record<string, unknown>>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    tenantResource?: TenantResourceMarker;
  }
}

export interface TenantResourceRoutesOptions<Create extends TObject, Update extends TObject> {
  /** The collection's path segment: `/notes` and `/notes/:id`. */
  readonly path: string;
  /** One noun for summaries and errors: `note`. */
  readonly noun: string;
  readonly scopes: { readonly read: string; readonly write: string };
  /** The create body; `update` defaults to every field of it optional (PATCH). */
  readonly create: Create;
  readonly update?: Update;
  readonly example: Static<Create>;
  readonly rows: TenantRows<Static<Create>>;
  /** The 404's code and title, from the module's own catalogue. */
  readonly notFound: { readonly code: string; readonly status: number };
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const originOf = (request: FastifyRequest): ChangeOrigin => ({
  correlationId: request.id,
  traceparent: request.trace.traceparent,
  actor: request.caller.subject,
});

/**
 * Create, list (cursor pages), read, change and delete of one tenant-owned resource, acting for
 * `request.caller.tenant` only. Reads need `scopes.read`, changes `scopes.write`. Every module that
 * keeps rows per tenant gets the same API shape, the same isolation and the same paging.
 */
export function tenantResourceRoutes<Create extends TObject, Update extends TObject = Create>(
  options: TenantResourceRoutesOptions<Create, Update>,
): FastifyPluginAsync {
  const { path, noun, rows, scopes } = options;
  const answer = Type.Object({
    id: Type.String({ format: 'uuid' }),
    ...options.create.properties,
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  });
  const update = options.update ?? Type.Partial(options.create, { additionalProperties: false, minProperties: 1 });
  const notFound = (id: string): BlocksError =>
    new BlocksError(options.notFound.code, options.notFound.status, `No ${noun} '${id}'.`, { extensions: { id } });
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const marker: TenantResourceMarker = { collection: `${app.prefix}${path}`, example: options.example };
    const read = { scope: scopes.read, tenantResource: marker };
    const write = { scope: scopes.write, tenantResource: marker };

    app.post(
      path,
      { config: write, schema: { summary: `Create a ${noun}`, body: options.create, response: { 201: answer, 400: Problem } } },
      async (request, reply) =>
        reply.code(201).send(await rows.create(request.caller.tenant, request.body as Static<Create>, originOf(request))),
    );
    app.get(
      path,
      {
        config: read,
        schema: {
          summary: `List ${noun}s, oldest first`,
          querystring: PageQuerySchema,
          response: { 200: pageSchemaOf(answer), 400: Problem },
        },
      },
      async (request) => {
        const limit = request.query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(request.query.limit);
        return rows.list(request.caller.tenant, { limit, cursor: request.query.cursor });
      },
    );
    app.get(
      `${path}/:id`,
      { config: read, schema: { summary: `One ${noun}`, params: IdParams, response: { 200: answer, 404: Problem } } },
      async (request) => (await rows.get(request.caller.tenant, request.params.id)) ?? Promise.reject(notFound(request.params.id)),
    );
    app.patch(
      `${path}/:id`,
      {
        config: write,
        schema: { summary: `Change a ${noun}`, params: IdParams, body: update, response: { 200: answer, 400: Problem, 404: Problem } },
      },
      async (request) =>
        (await rows.update(request.caller.tenant, request.params.id, request.body as Partial<Static<Create>>, originOf(request))) ??
        Promise.reject(notFound(request.params.id)),
    );
    app.delete(
      `${path}/:id`,
      { config: write, schema: { summary: `Delete a ${noun}`, params: IdParams, response: { 204: Type.Null(), 404: Problem } } },
      async (request, reply) => {
        if (!(await rows.remove(request.caller.tenant, request.params.id, originOf(request)))) throw notFound(request.params.id);
        return reply.code(204).send(null);
      },
    );
  };
}
