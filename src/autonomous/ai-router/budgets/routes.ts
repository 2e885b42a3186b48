import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Clock } from '../../../platform/clock.ts';
import type { Database } from '../../../platform/db/port.ts';
import type { BudgetStore, ChangeContext } from './budget-store.ts';
import { budgetNotFound, invalidBudget, invalidUsageQuery } from './errors.ts';
import { isoDate, type BudgetKey, type BudgetPeriod, type BudgetScope } from './periods.ts';
import { queryUsage, USAGE_DIMENSIONS, type UsageDimension } from './usage-store.ts';
import { ProblemSchema as Problem, PageQuerySchema, pageSchemaOf } from '../../../platform/http/schemas.ts';

/** An identity API key's id, as `/api/v1/identity/api-keys` shows it and `request.caller.apiKeyId` carries it. */
const API_KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What callers were keyed by before identity verified keys (`key_` + 16 hex of the key's SHA-256): no call matches one now. */
const LEGACY_API_KEY_ID = /^key_[0-9a-f]{16}$/;

const BudgetParams = Type.Object({
  scope: Type.Union([Type.Literal('tenant'), Type.Literal('api_key')], { description: 'Whom the budget limits' }),
  subject: Type.String({
    minLength: 1,
    maxLength: 63,
    description: 'The tenant itself, or the id of one of its identity API keys (a lowercase UUID, as /api/v1/identity/api-keys lists it)',
  }),
  period: Type.Union([Type.Literal('day'), Type.Literal('month')], { description: 'Resets at 00:00 UTC daily, or on the 1st monthly' }),
});

const BudgetAnswer = Type.Object({
  scope: Type.String(),
  subject: Type.String(),
  period: Type.String(),
  limit_usd: Type.Number(),
  spent_usd: Type.Number(),
  held_usd: Type.Number({ description: 'Held for calls in flight' }),
  remaining_usd: Type.Number(),
  period_start: Type.String({ format: 'date' }),
  resets_at: Type.String({ format: 'date-time' }),
  version: Type.Integer(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const Figures = {
  requests: Type.Integer(),
  failures: Type.Integer(),
  cached: Type.Integer(),
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  cost_usd: Type.Number(),
};

const DAY = '^\\d{4}-\\d{2}-\\d{2}$';
const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

export interface BudgetRoutesOptions {
  readonly store: BudgetStore;
  readonly db: Database;
  readonly clock: Clock;
}

/**
 * `/budgets` and `/usage` under `/ai`. Every route acts for `request.caller.tenant` only: another
 * tenant's budgets do not exist as far as the caller can tell.
 */
export const budgetRoutes: FastifyPluginAsync<BudgetRoutesOptions> = async (fastify, { store, db, clock }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const context = (request: FastifyRequest): ChangeContext => ({ correlationId: request.id, traceparent: request.trace.traceparent });

  /**
   * The budget the path names, for the caller's tenant; another tenant's budget is a 404. A budget
   * on a pre-identity key id can still be read and removed (`legacyAllowed`), though no call matches it.
   */
  const keyOf = (
    request: FastifyRequest,
    params: { scope: BudgetScope; subject: string; period: BudgetPeriod },
    legacyAllowed = true,
  ): BudgetKey => {
    const { tenant } = request.caller;
    if (params.scope === 'tenant' && params.subject !== tenant) throw budgetNotFound(params);
    if (params.scope === 'api_key' && !API_KEY_ID.test(params.subject)) {
      if (LEGACY_API_KEY_ID.test(params.subject)) {
        if (legacyAllowed) return { tenant, ...params };
        throw invalidBudget(
          'subject',
          `'${params.subject}' is a key id from before identity verified keys and no call matches it any more; ` +
            `cap the key by its identity id (a UUID) instead`,
        );
      }
      throw invalidBudget(
        'subject',
        `an api_key budget's subject is the id of an identity API key, a lowercase UUID such as ` +
          `3f0c2a9e-6b1d-4c8e-9a47-2d5e8f1b7c30 (GET /api/v1/identity/api-keys or /api/v1/autonomous/ai/usage?group_by=api_key ` +
          `show them); got '${params.subject}'`,
      );
    }
    return { tenant, ...params };
  };

  app.get(
    '/budgets',
    {
      config: { scope: 'ai:budgets' },
      schema: {
        summary: "List the caller's tenant's budgets with the current period's spend",
        tags: ['ai'],
        querystring: PageQuerySchema,
        response: {
          200: pageSchemaOf(BudgetAnswer),
          400: Problem,
        },
      },
    },
    async (request) => store.list(request.caller.tenant, clock.now(), Number(request.query.limit ?? 50), request.query.cursor),
  );

  app.get(
    '/budgets/:scope/:subject/:period',
    {
      config: { scope: 'ai:budgets' },
      schema: {
        summary: 'One budget with its current spend',
        tags: ['ai'],
        params: BudgetParams,
        response: { 200: BudgetAnswer, 400: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      const record = await store.get(keyOf(request, request.params), clock.now());
      return reply.header('etag', `"${record.version}"`).send(record);
    },
  );

  app.put(
    '/budgets/:scope/:subject/:period',
    {
      config: { scope: 'ai:budgets' },
      schema: {
        summary: 'Create a budget or replace its limit (the period keeps its spend); If-Match or `version` guards against lost updates',
        tags: ['ai'],
        params: BudgetParams,
        body: Type.Object(
          {
            limit_usd: Type.Number({ minimum: 0, maximum: 1e9, description: 'USD per period; 0 refuses every call' }),
            version: Type.Optional(Type.Integer({ minimum: 1, description: 'Replace only if the budget is still at this version' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: BudgetAnswer, 201: BudgetAnswer, 400: Problem, 404: Problem, 412: Problem },
      },
    },
    async (request, reply) => {
      const key = keyOf(request, request.params, false);
      // A tenant may cap the key it calls with, or one of its keys it has seen calls from (or already
      // capped); a key id it has no sign of answers as another tenant's would, so ids cannot be probed.
      if (key.scope === 'api_key' && key.subject !== request.caller.apiKeyId && !(await store.knowsApiKey(key.tenant, key.subject)))
        throw budgetNotFound(
          key,
          `Tenant '${key.tenant}' has seen no call made with API key ${key.subject}: cap the key you call with, ` +
            `or one of the tenant's keys once it has made a call.`,
        );
      const expected = request.body.version ?? ifMatchVersion(request.headers['if-match']);
      const { record, created } = await store.put(key, request.body.limit_usd, clock.now(), context(request), expected);
      return reply
        .code(created ? 201 : 200)
        .header('etag', `"${record.version}"`)
        .send(record);
    },
  );

  app.delete(
    '/budgets/:scope/:subject/:period',
    {
      config: { scope: 'ai:budgets' },
      schema: {
        summary: 'Remove a budget',
        tags: ['ai'],
        params: BudgetParams,
        response: { 204: Type.Null(), 400: Problem, 404: Problem },
      },
    },
    async (request, reply) => {
      await store.remove(keyOf(request, request.params), context(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/usage',
    {
      config: { scope: 'ai:read' },
      schema: {
        summary: "Spend of the caller's tenant per model, day and/or API key over a date range (UTC, inclusive), with totals",
        tags: ['ai'],
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ pattern: DAY, description: 'YYYY-MM-DD; default the first day of the current month' })),
            to: Type.Optional(Type.String({ pattern: DAY, description: 'YYYY-MM-DD; default today' })),
            group_by: Type.Optional(
              Type.String({ maxLength: 64, description: 'Comma-separated subset of model, day, api_key (default model,day)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            tenant: Type.String(),
            from: Type.String({ format: 'date' }),
            to: Type.String({ format: 'date' }),
            group_by: Type.Array(Type.String()),
            items: Type.Array(
              Type.Object({
                model: Type.Optional(Type.String()),
                day: Type.Optional(Type.String({ format: 'date' })),
                api_key_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
                ...Figures,
              }),
            ),
            totals: Type.Object(Figures),
          }),
          400: Problem,
        },
      },
    },
    async (request) => {
      const today = isoDate(clock.now());
      const to = request.query.to ?? today;
      const from = request.query.from ?? `${to.slice(0, 8)}01`;
      const fromMs = dayMs('from', from);
      const toMs = dayMs('to', to);
      if (fromMs > toMs) throw invalidUsageQuery('from', `must not be after to (${from} > ${to})`);
      if ((toMs - fromMs) / DAY_MS + 1 > MAX_RANGE_DAYS) throw invalidUsageQuery('to', `the range may span at most ${MAX_RANGE_DAYS} days`);
      const groupBy = parseGroupBy(request.query.group_by ?? 'model,day');
      const { tenant } = request.caller;
      return { tenant, from, to, group_by: groupBy, ...(await queryUsage(db, tenant, from, to, groupBy)) };
    },
  );
};

/** A real calendar day (the schema only checked the shape): 2026-02-30 is refused, not rolled over. */
function dayMs(parameter: string, day: string): number {
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(ms) || isoDate(ms) !== day) throw invalidUsageQuery(parameter, `'${day}' is not a calendar date`);
  return ms;
}

function parseGroupBy(value: string): UsageDimension[] {
  const parts = value === '' ? [] : value.split(',').map((part) => part.trim());
  const unknown = parts.filter((part) => !(USAGE_DIMENSIONS as readonly string[]).includes(part));
  if (unknown.length > 0)
    throw invalidUsageQuery('group_by', `unknown dimension ${unknown.map((u) => `'${u}'`).join(', ')}; use ${USAGE_DIMENSIONS.join(', ')}`);
  if (new Set(parts).size !== parts.length) throw invalidUsageQuery('group_by', 'names a dimension twice');
  return parts as UsageDimension[];
}

/** `If-Match: "3"` (or `W/"3"`) → 3; absent → no check. */
function ifMatchVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:W\/)?"(\d+)"$/.exec(header.trim());
  if (!match) throw invalidBudget('If-Match', `must be a version ETag such as "3" (got ${header})`);
  return Number(match[1]);
}
