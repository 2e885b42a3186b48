import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { problemFor, sendProblem } from '../../../platform/http/problem.ts';
import { storedAnswerOf } from '../../../platform/idempotency/index.ts';
import type { ChatAnswer, ChatCallInput, ChatProxy, StreamSink } from './chat-proxy.ts';
import { ChatCompletionBody } from './chat-request.ts';
import { openAiErrorOf } from './errors.ts';
import { CACHE_TTL_HEADER } from './response-cache.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    error: Type.Object({ message: Type.String(), type: Type.String(), code: Type.String() }, { additionalProperties: true }),
  },
  { additionalProperties: true },
);

const ChatCompletionAnswer = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('chat.completion'),
    created: Type.Integer(),
    model: Type.String(),
    choices: Type.Array(Type.Object({}, { additionalProperties: true })),
    usage: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: true, description: 'OpenAI chat.completion; with `stream: true`, an SSE stream of chat.completion.chunk' },
);

const ModelListAnswer = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ id: Type.String(), object: Type.Literal('model'), created: Type.Integer(), owned_by: Type.String() })),
});

export interface OpenAiRoutesOptions {
  readonly proxy: ChatProxy;
}

/**
 * OpenAI's wire format, for mounting at `/v1`: `POST /chat/completions` and `GET /models`.
 * Errors are problem+json like everywhere in Blocks, with OpenAI's envelope added as `error`
 * (`message`, `type`, `code`, `param`) so OpenAI SDKs report them properly.
 */
export const openAiRoutes: FastifyPluginAsync<OpenAiRoutesOptions> = async (fastify, options) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { proxy } = options;

  app.setErrorHandler((error, request, reply) => {
    const problem = problemFor(error, request);
    if (problem.status >= 500 && problem.code === 'INTERNAL') request.log.error({ err: error }, 'request failed');
    const firstField = (problem.errors as { pointer?: string }[] | undefined)?.[0]?.pointer?.split('/')[1];
    const param = typeof problem['param'] === 'string' ? problem['param'] : firstField;
    problem['error'] = openAiErrorOf(problem.status, problem.code, problem.detail, param);
    // A provider's Retry-After (ms) after the last fallback, or a budget's reset (s): tell the client when to come back.
    const retryAfterMs = problem['retry_after_ms'];
    const retryAfterS = problem['retry_after'];
    if (problem.status === 429 && typeof retryAfterMs === 'number') reply.header('retry-after', String(Math.ceil(retryAfterMs / 1000)));
    else if (typeof retryAfterS === 'number') reply.header('retry-after', String(retryAfterS));
    return sendProblem(reply, problem);
  });

  app.post(
    '/chat/completions',
    {
      config: { scope: 'ai:invoke' },
      schema: {
        summary: 'Chat completion (OpenAI format), routed, with fallbacks; `model` may be `auto` or a routing policy',
        tags: ['ai'],
        body: ChatCompletionBody,
        response: { 200: ChatCompletionAnswer, 400: Problem, 402: Problem, 403: Problem, 404: Problem, 422: Problem, 429: Problem },
      },
    },
    async (request, reply) => {
      const controller = new AbortController();
      const onClose = (): void => {
        if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
      };
      reply.raw.once('close', onClose);
      const input: ChatCallInput = {
        body: request.body,
        caller: request.caller,
        trace: { correlationId: request.id, traceparent: request.trace.traceparent },
        cacheTtlHeader: request.headers[CACHE_TTL_HEADER],
        signal: controller.signal,
      };
      if (request.body.stream !== true) {
        // Serialised here, once, by JSON.stringify: the answer is already a plain object in wire shape,
        // and a schema-driven serialiser would walk its open-ended members for nothing.
        let text: string | undefined;
        const textOf = (answer: ChatAnswer): string => (text ??= JSON.stringify(answer.completion));
        const scope = request.idempotency;
        const answer = await proxy.complete(
          scope === null
            ? input
            : {
                ...input,
                keep: (ready) => ({ scope, answer: storedAnswerOf(reply, textOf(ready), { ...ready.headers, 'content-type': JSON_TYPE }) }),
              },
        );
        // Stored with the call's record: the idempotency layer has nothing left to store or free.
        if (answer.kept) request.idempotency = null;
        return reply
          .headers(answer.headers)
          .type(JSON_TYPE)
          .send(textOf(answer) as never);
      }
      await streamTo(
        reply,
        (sink) => proxy.stream(input, sink),
        (error) => request.log.error({ err: error }, 'AI stream failed'),
      );
      return reply;
    },
  );

  app.get(
    '/models',
    {
      config: { scope: 'ai:invoke' },
      schema: {
        summary: 'Models a chat completion may name: auto, routing policies, enabled catalog models',
        tags: ['ai'],
        response: { 200: ModelListAnswer },
      },
    },
    async () => proxy.models(),
  );
};

/**
 * Runs a stream: resolves once the proxy opened it (the reply is then an SSE body fed as chunks
 * arrive), rejects when the proxy failed before opening (the error handler answers).
 */
function streamTo(reply: FastifyReply, run: (sink: StreamSink) => Promise<void>, onLateError: (error: unknown) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const body = new PassThrough();
    let opened = false;
    const sink: StreamSink = {
      open(headers) {
        opened = true;
        reply
          .code(200)
          .headers(headers)
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-cache')
          .header('x-accel-buffering', 'no');
        void reply.send(body);
        // A client that went away reads no more: pending writes must not wait for a drain that never comes.
        reply.raw.once('close', () => body.destroy());
        resolve();
      },
      write(text) {
        if (body.destroyed || body.write(text)) return undefined;
        return new Promise<void>((drained) => {
          const done = (): void => {
            body.off('drain', done);
            body.off('close', done);
            drained();
          };
          body.on('drain', done);
          body.on('close', done);
        });
      },
      end() {
        if (!body.destroyed) body.end();
      },
    };
    run(sink).then(
      () => {
        if (!opened) reject(new Error('the stream ended without opening'));
      },
      (error: unknown) => {
        if (opened) onLateError(error);
        else reject(error);
      },
    );
  });
}
