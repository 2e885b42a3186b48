import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from 'typebox';
import { parseDuration } from '../../../platform/config/duration.ts';
import { invalidStatsWindow } from './errors.ts';
import type { LearningService } from './service.ts';
import { ProblemSchema as Problem } from '../../../platform/http/schemas.ts';

const Complexity = Type.Enum(['low', 'medium', 'high']);
const Count = Type.Integer({ minimum: 0, maximum: 100_000_000 });

const FeedbackBody = Type.Object(
  {
    decision_id: Type.String({ format: 'uuid', description: 'The decision_id answered by /ai/route (or carried by a proxied call)' }),
    success: Type.Boolean({ description: 'Whether the model did the task' }),
    quality_score: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: 'Graded quality; learned from instead of success when given' }),
    ),
    latency_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400_000 })),
    prompt_tokens: Type.Optional(Count),
    completion_tokens: Type.Optional(Count),
    cost_usd: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000_000, description: 'What the call really cost, USD' })),
  },
  { additionalProperties: false },
);

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const OutcomeAnswer = Type.Object({
  id: Type.String({ format: 'uuid' }),
  decision_id: Type.String({ format: 'uuid' }),
  source: Type.Literal('feedback'),
  tenant: Type.String(),
  model: Type.String(),
  task_type: Type.String(),
  complexity: Complexity,
  success: Type.Boolean(),
  quality_score: Nullable(Type.Number()),
  latency_ms: Nullable(Type.Number()),
  prompt_tokens: Nullable(Type.Integer()),
  completion_tokens: Nullable(Type.Integer()),
  cost_usd: Nullable(Type.Number()),
  confidence: Nullable(Type.Number({ description: "The decision's confidence" })),
  recorded_at: Type.String({ format: 'date-time' }),
});

const EstimateAnswer = Type.Object({
  model: Type.String(),
  task_type: Type.String(),
  complexity: Complexity,
  prior: Type.Object({ quality: Type.Number(), latency_ms: Nullable(Type.Number()) }),
  observations: Type.Number({ description: 'Decayed count of outcomes and calls behind the estimate' }),
  quality: Type.Number({ description: 'P(success) = availability × answer quality; what routing uses' }),
  latency_ms: Nullable(Type.Number()),
  answer_quality: Type.Number({ description: 'Beta posterior mean: catalog prior updated with feedback' }),
  outcome_observations: Type.Number(),
  availability: Type.Number({ description: "Posterior share of the model's calls that work" }),
  call_observations: Type.Number(),
});

const StatsAnswer = Type.Object({
  estimates: Type.Array(EstimateAnswer),
  calibration: Type.Object({
    since: Type.String({ format: 'date-time' }),
    source: Type.Enum(['feedback', 'proxy', 'all']),
    outcomes: Type.Integer(),
    brier_score: Nullable(Type.Number()),
    expected_calibration_error: Nullable(Type.Number()),
    bins: Type.Array(
      Type.Object({
        from: Type.Number(),
        to: Type.Number(),
        outcomes: Type.Integer(),
        mean_confidence: Nullable(Type.Number()),
        success_rate: Nullable(Type.Number()),
      }),
    ),
  }),
});

/** The longest calibration window: outcomes are kept, but a scan of years is not what this page is for. */
const MAX_WINDOW_MS = 90 * 86_400_000;

export interface LearningRoutesOptions {
  readonly service: LearningService;
}

/** `/ai/feedback` and `/ai/stats` under the autonomous prefix. */
export const learningRoutes: FastifyPluginAsync<LearningRoutesOptions> = async (fastify, { service }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/feedback',
    {
      config: { scope: 'ai:feedback' },
      schema: {
        summary: 'Record the outcome of a routing decision; the router learns from it',
        tags: ['ai'],
        body: FeedbackBody,
        response: { 201: OutcomeAnswer, 400: Problem, 404: Problem, 409: Problem },
      },
    },
    async (request, reply) => {
      const outcome = await service.recordFeedback(request.caller, request.body, {
        correlationId: request.id,
        traceparent: request.trace.traceparent,
      });
      return reply.code(201).send(outcome);
    },
  );

  app.get(
    '/stats',
    {
      config: { scope: 'ai:read' },
      schema: {
        summary: 'Learned estimates per model, task type and complexity, and how well confidence predicted outcomes',
        tags: ['ai'],
        querystring: Type.Object(
          {
            window: Type.Optional(
              Type.String({ maxLength: 16, description: 'Calibration window, e.g. 1h, 24h, 7d (default 24h, at most 90d)' }),
            ),
            // Query strings are not type-coerced (coerceTypes is off), so the number arrives as text.
            bins: Type.Optional(Type.String({ pattern: '^(?:[2-9]|[1-4][0-9]|50)$', description: 'Calibration bins, 2..50 (default 10)' })),
            source: Type.Optional(Type.Enum(['feedback', 'proxy', 'all'], { description: 'Which outcomes to calibrate on (default all)' })),
            model: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            task_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: StatsAnswer, 400: Problem },
      },
    },
    async (request) => {
      const { window = '24h', bins = '10', source = 'all', model, task_type: taskType } = request.query;
      const windowMs = parseDuration(window);
      if (windowMs === undefined || windowMs <= 0 || windowMs > MAX_WINDOW_MS) throw invalidStatsWindow(window, MAX_WINDOW_MS);
      return service.stats(request.caller, {
        windowMs,
        bins: Number(bins),
        source: source === 'all' ? null : source,
        ...(model === undefined ? {} : { model }),
        ...(taskType === undefined ? {} : { taskType }),
      });
    },
  );
};
