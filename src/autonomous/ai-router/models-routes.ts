import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { BlocksError } from '../../platform/errors.ts';
import type { ChangeContext, ModelCatalogStore, ModelInput } from './catalog-store.ts';
import { ProblemSchema as Problem, PageQuerySchema, pageSchemaOf } from '../../platform/http/schemas.ts';

const Quality = Type.Object(
  {
    low: Type.Number({ minimum: 0, maximum: 1 }),
    medium: Type.Number({ minimum: 0, maximum: 1 }),
    high: Type.Number({ minimum: 0, maximum: 1 }),
  },
  { additionalProperties: false },
);

const Capability = Type.Enum(['tools', 'vision', 'json_mode', 'streaming']);
const deploymentFields = {
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
  provider: Type.Optional(
    Type.String({ minLength: 1, maxLength: 64, description: "A provider of ai.providers; the model's when omitted" }),
  ),
  base_url: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      description: "Overrides the provider's base URL; the provider's key is never sent to another one (name credentials_ref)",
    }),
  ),
  upstream_model: Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'The name the provider expects; the model id when omitted' }),
  ),
  weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Relative share of traffic (default 1)' })),
  region: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "Data-residency region; the provider's when omitted" })),
};
const DeploymentBody = Type.Object(
  {
    ...deploymentFields,
    credentials_ref: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "Where the key lives (env:NAME or file:/path within the operator's secrets bounds), e.g. env:AZURE_EU_API_KEY",
      }),
    ),
  },
  { additionalProperties: false },
);
const DeploymentAnswer = Type.Object({ ...deploymentFields, has_credentials: Type.Boolean() });

const modelFields = {
  provider: Type.String({ minLength: 1, maxLength: 64 }),
  task_types: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 64 }),
  context_window: Type.Integer({ minimum: 1 }),
  input_price_per_mtok: Type.Number({ minimum: 0, description: 'USD per million input tokens' }),
  output_price_per_mtok: Type.Number({ minimum: 0, description: 'USD per million output tokens' }),
  quality: Type.Record(Type.String(), Quality, { description: 'Expected success (0..1) per task type and complexity' }),
  typical_latency_ms: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  capabilities: Type.Optional(
    Type.Array(Capability, {
      uniqueItems: true,
      description: 'What the model supports beyond text chat; default tools, json_mode, streaming',
    }),
  ),
  deployments: Type.Optional(
    Type.Array(DeploymentBody, { maxItems: 64, description: 'Where the model can be called; one deployment on its provider when omitted' }),
  ),
  enabled: Type.Optional(Type.Boolean({ default: true })),
  credentials_ref: Type.Optional(
    Type.Union([
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "Where the key lives (env:NAME or file:/path within the operator's secrets bounds), e.g. env:OPENAI_API_KEY",
      }),
      Type.Null(),
    ]),
  ),
};

const ModelId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]*$' });
const CreateBody = Type.Object({ model: ModelId, ...modelFields }, { additionalProperties: false });
const ReplaceBody = Type.Object(
  {
    ...modelFields,
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'Replace only if the model is still at this version' })),
  },
  { additionalProperties: false },
);

const ModelAnswer = Type.Object({
  model: Type.String(),
  provider: Type.String(),
  task_types: Type.Array(Type.String()),
  context_window: Type.Integer(),
  input_price_per_mtok: Type.Number(),
  output_price_per_mtok: Type.Number(),
  quality: Type.Record(Type.String(), Quality),
  typical_latency_ms: Type.Union([Type.Integer(), Type.Null()]),
  capabilities: Type.Array(Capability),
  deployments: Type.Array(DeploymentAnswer),
  enabled: Type.Boolean(),
  has_credentials: Type.Boolean({ description: 'Whether a credentials reference is set; the reference itself is never returned' }),
  version: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const ModelParams = Type.Object({ model: ModelId });

/** `/models` under `/ai`: the model catalog. Handlers stay thin; the store validates and writes. */
export const modelsRoutes: FastifyPluginAsync<{ store: ModelCatalogStore }> = async (fastify, { store }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const context = (request: FastifyRequest): ChangeContext => ({ correlationId: request.id, traceparent: request.trace.traceparent });

  app.get(
    '/models',
    {
      config: { scope: 'ai:models:read' },
      schema: {
        summary: 'List the model catalog, ordered by model id',
        tags: ['ai'],
        querystring: PageQuerySchema,
        response: {
          200: pageSchemaOf(ModelAnswer),
          400: Problem,
        },
      },
    },
    async (request) => store.list(Number(request.query.limit ?? 50), request.query.cursor),
  );

  app.get(
    '/models/:model',
    {
      config: { scope: 'ai:models:read' },
      schema: { summary: 'One model of the catalog', tags: ['ai'], params: ModelParams, response: { 200: ModelAnswer, 404: Problem } },
    },
    async (request) => store.get(request.params.model),
  );

  app.post(
    '/models',
    {
      config: { scope: 'ai:models:write' },
      schema: {
        summary: 'Add a model to the catalog',
        tags: ['ai'],
        body: CreateBody,
        response: { 201: ModelAnswer, 400: Problem, 409: Problem },
      },
    },
    async (request, reply) => {
      const created = await store.create(request.body, context(request));
      return reply.code(201).header('etag', `"${created.version}"`).send(created);
    },
  );

  app.put(
    '/models/:model',
    {
      config: { scope: 'ai:models:write' },
      schema: {
        summary: 'Replace a model of the catalog (every field); If-Match or `version` guards against lost updates',
        tags: ['ai'],
        params: ModelParams,
        body: ReplaceBody,
        response: { 200: ModelAnswer, 400: Problem, 404: Problem, 412: Problem },
      },
    },
    async (request, reply) => {
      const { version, ...fields } = request.body;
      const expected = version ?? ifMatchVersion(request.headers['if-match']);
      const replaced = await store.replace(
        { ...(fields as Omit<ModelInput, 'model'>), model: request.params.model },
        context(request),
        expected,
      );
      return reply.header('etag', `"${replaced.version}"`).send(replaced);
    },
  );

  app.delete(
    '/models/:model',
    {
      config: { scope: 'ai:models:write' },
      schema: {
        summary: 'Remove a model from the catalog',
        tags: ['ai'],
        params: ModelParams,
        response: { 204: Type.Null(), 404: Problem },
      },
    },
    async (request, reply) => {
      await store.remove(request.params.model, context(request));
      return reply.code(204).send(null);
    },
  );
};

/** `If-Match: "3"` (or `W/"3"`) → 3; absent → no check. */
function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:W\/)?"(\d+)"$/.exec(header.trim());
  if (!match) throw new BlocksError('BAD_REQUEST', 400, `If-Match must be a version ETag such as "3" (got ${header})`);
  return Number(match[1]);
}
