import { BlocksError } from '../errors.ts';
import { serviceClientErrors } from './errors.ts';
import type { Caller } from '../http/caller.ts';
import { ACT_FOR_HEADER, encodeActingFor } from '../http/delegation.ts';

/** What `POST /api/v1/autonomous/ai/route` takes and answers (see the autonomous service's OpenAPI document). */
export type RouteRequest = Readonly<Record<string, unknown>> & { readonly task_type: string };
export type RouteDecision = Readonly<Record<string, unknown>> & { readonly selected_model: string; readonly decision_id: string };
/** An OpenAI chat completion request and answer, as `/v1/chat/completions` takes and gives them. */
export type ChatRequest = Readonly<Record<string, unknown>> & { readonly messages: readonly unknown[] };
export type ChatCompletion = Readonly<Record<string, unknown>> & { readonly choices: readonly unknown[] };
export type ChatChunk = Readonly<Record<string, unknown>>;

/**
 * The autonomous service as the collaborative one calls it (a workflow's AI step, an MCP sampling
 * request), for a caller: the call runs as that caller, with no more than its scopes, whether the
 * autonomous service runs in this process or elsewhere.
 */
export interface AutonomousClient {
  route(request: RouteRequest, caller: Caller): Promise<RouteDecision>;
  complete(request: ChatRequest, caller: Caller): Promise<ChatCompletion>;
  /** The completion's chunks as they come; the iteration throws the problem if the service refuses. */
  stream(request: ChatRequest, caller: Caller): AsyncIterable<ChatChunk>;
}

/** One HTTP exchange, over the network or into an app of this process. */
export interface ServiceTransport {
  send(request: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string;
  }): Promise<{ status: number; headers: Headers; body: ReadableStream<Uint8Array> | string }>;
}

export interface AutonomousClientOptions {
  /** Where the autonomous service is: in-process or its URLs (transports.ts). */
  readonly transport: ServiceTransport;
  /** The bearer token of this process' service identity (service-token.ts); a fresh one when asked again after a 401. */
  readonly token: (options?: { renew?: boolean }) => Promise<string>;
}

export function createAutonomousClient(options: AutonomousClientOptions): AutonomousClient {
  const exchange = async (path: string, body: unknown, caller: Caller, accept: string) => {
    const send = async (renew: boolean) =>
      options.transport.send({
        method: 'POST',
        path,
        headers: {
          authorization: `Bearer ${await options.token({ renew })}`,
          [ACT_FOR_HEADER]: encodeActingFor(caller),
          'content-type': 'application/json',
          accept,
        },
        body: JSON.stringify(body),
      });
    let answer = await send(false);
    // The token expired between being cached and being checked: one more try with a new one.
    if (answer.status === 401) answer = await send(true);
    if (answer.status >= 400) throw await problemOf(answer);
    return answer;
  };
  return {
    route: async (request, caller) =>
      JSON.parse(await textOf((await exchange('/api/v1/autonomous/ai/route', request, caller, 'application/json')).body)) as RouteDecision,
    complete: async (request, caller) =>
      JSON.parse(
        await textOf((await exchange('/v1/chat/completions', { ...request, stream: false }, caller, 'application/json')).body),
      ) as ChatCompletion,
    async *stream(request, caller) {
      const answer = await exchange('/v1/chat/completions', { ...request, stream: true }, caller, 'text/event-stream');
      yield* serverSentData(answer.body);
    },
  };
}

async function textOf(body: ReadableStream<Uint8Array> | string): Promise<string> {
  if (typeof body === 'string') return body;
  return new Response(body).text();
}

/** The service's problem document as the error this side raises, status and code kept. */
async function problemOf(answer: { status: number; body: ReadableStream<Uint8Array> | string }): Promise<BlocksError> {
  const text = await textOf(answer.body);
  try {
    const problem = JSON.parse(text) as { code?: unknown; detail?: unknown };
    const { code, detail, ...rest } = problem as Record<string, unknown>;
    return new BlocksError(
      typeof code === 'string' ? code : 'SERVICE_CALL_FAILED',
      answer.status,
      typeof detail === 'string' ? detail : `The autonomous service answered ${answer.status}.`,
      { extensions: Object.fromEntries(Object.entries(rest).filter(([key]) => !['type', 'title', 'status', 'instance'].includes(key))) },
    );
  } catch {
    return new BlocksError('SERVICE_CALL_FAILED', answer.status, `The autonomous service answered ${answer.status}.`);
  }
}

/** The JSON of each `data:` event of a server-sent event stream, until `[DONE]`. */
async function* serverSentData(body: ReadableStream<Uint8Array> | string): AsyncIterable<ChatChunk> {
  const decoder = new TextDecoder();
  let buffered = '';
  const events = typeof body === 'string' ? [new TextEncoder().encode(body)] : body;
  for await (const part of events) {
    buffered += decoder.decode(part, { stream: true });
    let boundary: number;
    while ((boundary = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, boundary);
      buffered = buffered.slice(boundary + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data === '') continue;
      if (data === '[DONE]') return;
      const chunk = JSON.parse(data) as ChatChunk & { error?: unknown };
      // A failure after the stream began arrives as an error event (the proxy's).
      if (chunk.error !== undefined)
        throw new BlocksError(
          'SERVICE_STREAM_FAILED',
          serviceClientErrors.SERVICE_STREAM_FAILED.status,
          JSON.stringify(chunk.error).slice(0, 500),
        );
      yield chunk;
    }
  }
}
