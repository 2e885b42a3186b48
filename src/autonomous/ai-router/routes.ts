import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AiRouterService } from './service.ts';
import type { RouteRequest } from './types.ts';
import { aiRouterTimeout } from './errors.ts';

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
        {},
        { additionalProperties: true, description: 'Request context; prompt, messages[].content and input are what get counted' },
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

const Problem = Type.Object(
  { type: Type.String(), title: Type.String(), status: Type.Integer(), detail: Type.String(), code: Type.String() },
  { additionalProperties: true },
);

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
      const decided = options.service.route(request.body as RouteRequest, {
        correlationId: request.id,
        traceparent: request.trace.traceparent,
      });
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
