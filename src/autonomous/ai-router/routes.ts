import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AiRouterService } from './service.ts';
import { CAPABILITIES } from './types.ts';
import { OPTIMIZE_MODES } from './tenant-policy.ts';
import { aiRouterTimeout } from './errors.ts';
import { ProblemSchema as Problem } from '../../platform/http/schemas.ts';

const RouteBody = Type.Object(
  {
    task_type: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: '^[a-z][a-z0-9_.-]*$',
      description: 'What the model must do, e.g. code, chat, summarization',
    }),
    complexity: Type.Enum(['low', 'medium', 'high']),
    preferred_model: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    context: Type.Optional(
      Type.Object(
        {
          max_cost: Type.Optional(Type.Number({ minimum: 0, description: 'Hard limit in USD on the estimated cost of the call' })),
          max_latency_ms: Type.Optional(
            Type.Integer({
              minimum: 0,
              description: 'Hard limit on the learned typical latency; models with unknown latency are excluded',
            }),
          ),
          optimize: Type.Optional(Type.Enum([...OPTIMIZE_MODES], { description: 'Ranking weights to use; overrides the tenant default' })),
          capabilities: Type.Optional(
            Type.Array(Type.Enum([...CAPABILITIES]), { uniqueItems: true, description: 'Capabilities the model must have' }),
          ),
        },
        {
          additionalProperties: true,
          description: 'Request context; prompt, messages[].content and input are what get counted; the keys above constrain the choice',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const RouteAnswer = Type.Object({
  selected_model: Type.String(),
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'Estimated probability that the model succeeds on this task' }),
  routing_reason: Type.String(),
  estimated_cost: Type.Number({ minimum: 0, description: 'USD for the counted prompt plus the expected output' }),
  decision_id: Type.String({ format: 'uuid' }),
});

export interface AiRouterRoutesOptions {
  readonly service: AiRouterService;
  /** `ai_router_timeout`: a decision not made by then is answered 503. */
  readonly timeoutMs: number;
}

/** `/ai/*` under the autonomous prefix. Handlers stay thin: the service decides and records. */
export const aiRouterRoutes: FastifyPluginAsync<AiRouterRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/route',
    {
      config: { scope: 'ai:route' },
      schema: {
        summary: 'Choose the model for a task, with confidence, reason and estimated cost',
        tags: ['ai'],
        body: RouteBody,
        response: { 200: RouteAnswer, 400: Problem, 422: Problem, 503: Problem },
      },
    },
    async (request) => {
      const decided = options.service.route(
        request.body,
        { correlationId: request.id, traceparent: request.trace.traceparent },
        request.caller,
      );
      return withDeadline(decided, options.timeoutMs);
    },
  );
};

async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(aiRouterTimeout(ms)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
