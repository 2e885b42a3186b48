import { Type, type Static } from 'typebox';
import { BlocksError } from '../../../platform/errors.ts';
import type { ChatCompletionRequest } from '../providers/index.ts';
import type { Capability, Complexity } from '../types.ts';

const Optimize = Type.Enum(['cost', 'quality', 'latency', 'balanced']);

/** The Blocks extension a client may add to an OpenAI request; every member optional. */
export const BlocksExtension = Type.Object(
  {
    task_type: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_.-]*$' })),
    complexity: Type.Optional(Type.Enum(['low', 'medium', 'high'])),
    optimize: Type.Optional(Optimize),
    /** USD the call may cost at most; candidates estimated above it are not used. */
    max_cost: Type.Optional(Type.Number({ minimum: 0 })),
    max_latency_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Opt into the response cache for this many seconds (capped at `response_cache.max_ttl`); 0 turns it off. */
    cache_ttl: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Opt into the response cache for `response_cache.default_ttl`. */
    cache: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Blocks routing hints; not part of the OpenAI format' },
);

const Loose = Type.Object({}, { additionalProperties: true });

/**
 * `POST /v1/chat/completions` body: OpenAI's documented Chat Completions parameters plus `blocks`.
 * Unknown top-level members are refused (a misspelt parameter must not be silently dropped);
 * messages are checked role by role in {@link checkMessages}, which names the offending member.
 */
export const ChatCompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256, description: 'A catalog model id, a routing policy name, or `auto`' }),
    messages: Type.Array(Type.Object({ role: Type.String() }, { additionalProperties: true }), { minItems: 1, maxItems: 10_000 }),
    stream: Type.Optional(Type.Boolean()),
    stream_options: Type.Optional(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
    max_completion_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
    n: Type.Optional(Type.Integer({ minimum: 1, maximum: 1, description: 'Only one choice per call is supported' })),
    stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 }), Type.Null()])),
    presence_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
    frequency_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
    logit_bias: Type.Optional(Type.Record(Type.String(), Type.Number({ minimum: -100, maximum: 100 }))),
    logprobs: Type.Optional(Type.Boolean()),
    top_logprobs: Type.Optional(Type.Integer({ minimum: 0, maximum: 20 })),
    seed: Type.Optional(Type.Integer()),
    user: Type.Optional(Type.String({ maxLength: 256 })),
    response_format: Type.Optional(
      Type.Object(
        { type: Type.Enum(['text', 'json_object', 'json_schema']), json_schema: Type.Optional(Loose) },
        { additionalProperties: false },
      ),
    ),
    tools: Type.Optional(
      Type.Array(
        Type.Object(
          {
            type: Type.Literal('function'),
            function: Type.Object(
              {
                name: Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' }),
                description: Type.Optional(Type.String()),
                parameters: Type.Optional(Loose),
                strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
              },
              { additionalProperties: false },
            ),
          },
          { additionalProperties: false },
        ),
        { maxItems: 128 },
      ),
    ),
    tool_choice: Type.Optional(
      Type.Union([
        Type.Enum(['none', 'auto', 'required']),
        Type.Object(
          {
            type: Type.Literal('function'),
            function: Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    parallel_tool_calls: Type.Optional(Type.Boolean()),
    reasoning_effort: Type.Optional(Type.Enum(['minimal', 'low', 'medium', 'high'])),
    service_tier: Type.Optional(Type.String()),
    store: Type.Optional(Type.Boolean()),
    metadata: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }))),
    modalities: Type.Optional(Type.Array(Type.Enum(['text', 'audio']))),
    audio: Type.Optional(Loose),
    prediction: Type.Optional(Loose),
    web_search_options: Type.Optional(Loose),
    blocks: Type.Optional(BlocksExtension),
  },
  { additionalProperties: false },
);

export type ChatCompletionBodyType = Static<typeof ChatCompletionBody>;

interface FieldError {
  readonly location: 'body';
  readonly pointer: string;
  readonly message: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const MESSAGE_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  system: new Set(['role', 'content', 'name']),
  developer: new Set(['role', 'content', 'name']),
  user: new Set(['role', 'content', 'name']),
  assistant: new Set(['role', 'content', 'name', 'tool_calls', 'refusal']),
  tool: new Set(['role', 'content', 'tool_call_id']),
};

/**
 * Checks each message for its role: known role, only that role's members, content of the
 * right shape (text for every role; image parts from users only), tool calls and tool results
 * well formed. Returns whether an image part was seen (the call then needs vision).
 * @throws BlocksError VALIDATION_FAILED (400) listing every problem by JSON pointer.
 */
export function checkMessages(messages: readonly unknown[]): { readonly hasImages: boolean } {
  const errors: FieldError[] = [];
  let hasImages = false;
  const fail = (pointer: string, message: string): void => void errors.push({ location: 'body', pointer, message });
  messages.forEach((message, i) => {
    const at = `/messages/${i}`;
    if (!isRecord(message)) return fail(at, 'must be an object');
    const role = message['role'];
    const allowed = typeof role === 'string' ? MESSAGE_FIELDS[role] : undefined;
    if (allowed === undefined) return fail(`${at}/role`, 'must be one of: system, developer, user, assistant, tool');
    for (const key of Object.keys(message)) if (!allowed.has(key)) fail(`${at}/${key}`, `is not allowed in a ${String(role)} message`);
    if (message['name'] !== undefined && typeof message['name'] !== 'string') fail(`${at}/name`, 'must be a string');
    const content = message['content'];
    if (role === 'assistant') {
      const calls = message['tool_calls'];
      if (calls !== undefined) checkToolCalls(calls, `${at}/tool_calls`, fail);
      if (content === null || (content === undefined && calls !== undefined)) return;
      if (message['refusal'] !== undefined && message['refusal'] !== null && typeof message['refusal'] !== 'string')
        fail(`${at}/refusal`, 'must be a string or null');
    }
    if (role === 'tool' && (typeof message['tool_call_id'] !== 'string' || message['tool_call_id'] === ''))
      fail(`${at}/tool_call_id`, 'is required: the id of the tool call this answers');
    if (typeof content === 'string') return;
    if (!Array.isArray(content)) return fail(`${at}/content`, 'must be a string or a list of content parts');
    if (content.length === 0) return fail(`${at}/content`, 'must not be an empty list');
    content.forEach((part: unknown, j) => {
      const partAt = `${at}/content/${j}`;
      if (!isRecord(part)) return fail(partAt, 'must be an object');
      if (part['type'] === 'text') {
        if (typeof part['text'] !== 'string') fail(`${partAt}/text`, 'must be a string');
        for (const key of Object.keys(part)) if (key !== 'type' && key !== 'text') fail(`${partAt}/${key}`, 'is not allowed');
        return;
      }
      if (part['type'] === 'image_url' && role === 'user') {
        hasImages = true;
        const image = part['image_url'];
        if (!isRecord(image) || typeof image['url'] !== 'string' || image['url'] === '')
          return fail(`${partAt}/image_url`, 'must be an object with a url');
        if (image['detail'] !== undefined && !['auto', 'low', 'high'].includes(image['detail'] as string))
          fail(`${partAt}/image_url/detail`, 'must be one of: auto, low, high');
        for (const key of Object.keys(part)) if (key !== 'type' && key !== 'image_url') fail(`${partAt}/${key}`, 'is not allowed');
        return;
      }
      fail(`${partAt}/type`, role === 'user' ? 'must be text or image_url' : 'must be text');
    });
  });
  if (errors.length > 0) {
    const summary = errors.map((e) => `${e.pointer} ${e.message}`).join('; ');
    throw new BlocksError('VALIDATION_FAILED', 400, `Invalid body: ${summary}`, { extensions: { errors } });
  }
  return { hasImages };
}

function checkToolCalls(calls: unknown, at: string, fail: (pointer: string, message: string) => void): void {
  if (!Array.isArray(calls)) return fail(at, 'must be a list');
  calls.forEach((call: unknown, k) => {
    const callAt = `${at}/${k}`;
    if (!isRecord(call)) return fail(callAt, 'must be an object');
    if (typeof call['id'] !== 'string' || call['id'] === '') fail(`${callAt}/id`, 'must be a non-empty string');
    if (call['type'] !== 'function') fail(`${callAt}/type`, "must be 'function'");
    const fn = call['function'];
    if (!isRecord(fn) || typeof fn['name'] !== 'string' || typeof fn['arguments'] !== 'string')
      fail(`${callAt}/function`, 'must have a name and arguments (a JSON text)');
  });
}

/** Routing hints of one call, after the request, its policy and the configured defaults. */
export interface CallHints {
  readonly taskType: string;
  readonly complexity: Complexity;
  readonly optimize: string | undefined;
  readonly maxCost: number | undefined;
  readonly maxLatencyMs: number | undefined;
  readonly capabilities: readonly Capability[];
}

/** The capabilities a request needs from the model that serves it. */
export function requiredCapabilities(body: ChatCompletionBodyType, hasImages: boolean): Capability[] {
  const needs: Capability[] = [];
  if ((body.tools?.length ?? 0) > 0) needs.push('tools');
  if (hasImages) needs.push('vision');
  if (body.response_format?.type === 'json_object' || body.response_format?.type === 'json_schema') needs.push('json_mode');
  if (body.stream === true) needs.push('streaming');
  return needs;
}

/**
 * The request as a provider gets it: the client's parameters (an OpenAI-compatible provider
 * receives them all), without the Blocks extension and the stream settings the proxy owns,
 * `developer` turns sent as `system` (not every provider knows the newer role).
 */
export function upstreamRequest(body: ChatCompletionBodyType, upstreamModel: string): ChatCompletionRequest {
  const { blocks: _blocks, stream: _stream, stream_options: _options, ...rest } = body;
  const messages = body.messages.some((m) => m.role === 'developer')
    ? body.messages.map((m) => (m.role === 'developer' ? { ...m, role: 'system' } : m))
    : body.messages;
  return { ...rest, model: upstreamModel, messages } as unknown as ChatCompletionRequest;
}

/**
 * The canonical JSON of what decides an answer: every member with keys sorted, minus those that
 * do not change it (`stream`, `stream_options`, `blocks`, `user`). The model is kept as the
 * client named it, so `auto` and a concrete model are cached apart.
 */
export function canonicalRequest(body: ChatCompletionBodyType): string {
  const { blocks: _blocks, stream: _stream, stream_options: _options, user: _user, ...rest } = body;
  return canonicalJson(rest);
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value)
      .filter((key) => value[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
