import type { EgressPolicy } from '../../../platform/net/egress.ts';
import { boundedText, ProviderError } from './errors.ts';
import { excerpted, openExchange, readJsonBody } from './http.ts';
import { readSse } from './sse.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatToolCall,
  ChatToolCallDelta,
  ChatUsage,
  FinishReason,
  ProviderAdapter,
  ProviderCallOptions,
} from './types.ts';

export interface OpenAiCompatibleOptions {
  /** Up to and including the version segment, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer …` when given (local servers such as Ollama need none). */
  readonly apiKey?: string;
  /** Extra headers, e.g. Azure's `api-key` or OpenRouter's `HTTP-Referer`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Longest wait for the answer (non-streaming) or between two reads of a stream. */
  readonly timeoutMs: number;
  /** Names the provider in errors; defaults to `openai-compatible`. */
  readonly name?: string;
  /** Checks every connection after DNS resolution (a `baseUrl` a caller set); none for the operator's own endpoints. */
  readonly egress?: EgressPolicy;
}

/**
 * An adapter for any server speaking OpenAI's Chat Completions (OpenAI, Azure-style endpoints,
 * vLLM, Ollama, OpenRouter…). Requests go out as they are. Answers are rebuilt from the fields of
 * the canonical format, each checked for its type: nothing else a provider sends reaches the
 * client, and anything malformed is a `ProviderError` 'bad_response'. Token counts that are not
 * non-negative integers are dropped (the proxy then counts itself), so a provider cannot lower
 * what a call is charged.
 */
export function createOpenAiCompatibleAdapter(options: OpenAiCompatibleOptions): ProviderAdapter {
  const provider = options.name ?? 'openai-compatible';
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey !== undefined) headers['authorization'] = `Bearer ${options.apiKey}`;

  const dispatcher = options.egress?.dispatcher;
  const open = (body: unknown, call: ProviderCallOptions | undefined) =>
    openExchange({
      provider,
      url,
      headers,
      body,
      timeoutMs: options.timeoutMs,
      signal: call?.signal,
      deadline: call?.deadline,
      ...(dispatcher === undefined ? {} : { dispatcher }),
    });

  return {
    protocol: 'openai',

    async complete(request, call) {
      const exchange = await open({ ...request, stream: false }, call);
      const body = await readJsonBody(exchange, provider);
      return checkCompletion(body, provider);
    },

    async *stream(request: ChatCompletionRequest, call?: ProviderCallOptions): AsyncGenerator<ChatCompletionChunk> {
      const exchange = await open({ ...request, stream: true, stream_options: { include_usage: true } }, call);
      for await (const event of readSse(exchange, provider, (event) => event.data === '[DONE]')) {
        if (event.data === '[DONE]') return;
        yield checkChunk(parse(event.data, provider), provider);
      }
      throw new ProviderError('bad_response', `${provider} ended its stream without [DONE]`, { provider });
    },
  };
}

function parse(text: string, provider: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProviderError('bad_response', `${provider} sent a stream event that is not JSON`, {
      provider,
      cause: excerpted(text, error),
    });
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const FINISH_REASONS: readonly FinishReason[] = ['stop', 'length', 'tool_calls', 'content_filter'];
const finishReasonOf = (value: unknown): FinishReason | null =>
  value === 'function_call' ? 'tool_calls' : (FINISH_REASONS.find((reason) => reason === value) ?? null);

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const textOr = (value: unknown, fallback: string): string => (typeof value === 'string' ? value : fallback);

/** Usage with both counts as non-negative integers, the total recomputed; undefined otherwise. */
function usageOf(value: unknown): ChatUsage | undefined {
  if (!isRecord(value) || !isCount(value['prompt_tokens']) || !isCount(value['completion_tokens'])) return undefined;
  const prompt = value['prompt_tokens'];
  const completion = value['completion_tokens'];
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** `content` of a message or delta: text or null; anything else (an object, a number) is refused. */
function contentOf(value: unknown, where: string, bad: (what: string) => ProviderError): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw bad(`${where}.content that is not text`);
  return value;
}

function toolCallsOf(value: unknown, where: string, bad: (what: string) => ProviderError): ChatToolCall[] {
  if (!Array.isArray(value)) throw bad(`${where}.tool_calls that is not a list`);
  return value.map((call: unknown, i): ChatToolCall => {
    const fn = isRecord(call) ? call['function'] : undefined;
    if (!isRecord(call) || typeof call['id'] !== 'string' || !isRecord(fn) || typeof fn['name'] !== 'string') {
      throw bad(`${where}.tool_calls[${i}] without id and function.name`);
    }
    if (typeof fn['arguments'] !== 'string') throw bad(`${where}.tool_calls[${i}].function.arguments that is not text`);
    return { id: call['id'], type: 'function', function: { name: fn['name'], arguments: fn['arguments'] } };
  });
}

function toolCallDeltasOf(value: unknown, bad: (what: string) => ProviderError): ChatToolCallDelta[] {
  if (!Array.isArray(value)) throw bad('a delta.tool_calls that is not a list');
  return value.map((call: unknown, i): ChatToolCallDelta => {
    if (!isRecord(call) || !isCount(call['index'])) throw bad(`a delta.tool_calls[${i}] without an index`);
    const fn = call['function'];
    if (fn !== undefined && !isRecord(fn)) throw bad(`a delta.tool_calls[${i}].function that is not an object`);
    const name = fn?.['name'];
    const args = fn?.['arguments'];
    if ((name !== undefined && typeof name !== 'string') || (args !== undefined && typeof args !== 'string')) {
      throw bad(`a delta.tool_calls[${i}].function whose name or arguments are not text`);
    }
    return {
      index: call['index'],
      ...(typeof call['id'] === 'string' ? { id: call['id'] } : {}),
      ...(call['type'] === 'function' ? { type: 'function' as const } : {}),
      ...(fn === undefined
        ? {}
        : { function: { ...(name === undefined ? {} : { name }), ...(args === undefined ? {} : { arguments: args }) } }),
    };
  });
}

function checkCompletion(body: unknown, provider: string): ChatCompletion {
  const bad = (what: string): ProviderError =>
    new ProviderError('bad_response', `${provider} sent a completion with ${what}`, { provider });
  const choices = isRecord(body) ? body['choices'] : undefined;
  if (
    !isRecord(body) ||
    !Array.isArray(choices) ||
    choices.length === 0 ||
    !choices.every((choice) => isRecord(choice) && isRecord(choice['message']))
  ) {
    throw new ProviderError('bad_response', `${provider} sent a completion without choices[].message`, { provider });
  }
  const usage = usageOf(body['usage']);
  return {
    id: textOr(body['id'], ''),
    object: 'chat.completion',
    created: isCount(body['created']) ? body['created'] : Math.floor(Date.now() / 1000),
    model: textOr(body['model'], ''),
    choices: (choices as Record<string, Record<string, unknown>>[]).map((choice, i) => {
      const message = choice['message'] as Record<string, unknown>;
      const where = `choices[${i}].message`;
      const toolCalls =
        message['tool_calls'] === undefined || message['tool_calls'] === null ? [] : toolCallsOf(message['tool_calls'], where, bad);
      return {
        index: isCount(choice['index']) ? choice['index'] : i,
        message: {
          role: 'assistant',
          content: contentOf(message['content'], where, bad),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: finishReasonOf(choice['finish_reason']),
      };
    }),
    ...(usage === undefined ? {} : { usage }),
  };
}

function checkChunk(body: unknown, provider: string): ChatCompletionChunk {
  if (isRecord(body) && isRecord(body['error'])) {
    const message = typeof body['error']['message'] === 'string' ? boundedText(body['error']['message']) : 'no message';
    throw new ProviderError('server', `${provider} reported an error mid-stream: ${message}`, { provider });
  }
  const choices = isRecord(body) ? body['choices'] : undefined;
  if (!isRecord(body) || !Array.isArray(choices) || !choices.every((choice) => isRecord(choice) && isRecord(choice['delta']))) {
    throw new ProviderError('bad_response', `${provider} sent a stream chunk without choices[].delta`, { provider });
  }
  const bad = (what: string): ProviderError =>
    new ProviderError('bad_response', `${provider} sent a stream chunk with ${what}`, { provider });
  const usage = body['usage'] === null ? null : usageOf(body['usage']);
  return {
    id: textOr(body['id'], ''),
    object: 'chat.completion.chunk',
    created: isCount(body['created']) ? body['created'] : Math.floor(Date.now() / 1000),
    model: textOr(body['model'], ''),
    choices: (choices as Record<string, Record<string, unknown>>[]).map((choice, i) => {
      const delta = choice['delta'] as Record<string, unknown>;
      const content = delta['content'];
      if (content !== undefined && content !== null && typeof content !== 'string')
        throw bad(`choices[${i}].delta.content that is not text`);
      const toolCalls =
        delta['tool_calls'] === undefined || delta['tool_calls'] === null ? undefined : toolCallDeltasOf(delta['tool_calls'], bad);
      return {
        index: isCount(choice['index']) ? choice['index'] : i,
        delta: {
          ...(delta['role'] === 'assistant' ? { role: 'assistant' as const } : {}),
          ...(content === undefined ? {} : { content }),
          ...(toolCalls === undefined ? {} : { tool_calls: toolCalls }),
        },
        finish_reason: finishReasonOf(choice['finish_reason']),
      };
    }),
    ...(usage === undefined ? {} : { usage }),
  };
}
