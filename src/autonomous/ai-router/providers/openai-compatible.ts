import { ProviderError } from './errors.ts';
import { openExchange, readJsonBody } from './http.ts';
import { readSse } from './sse.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ProviderAdapter, ProviderCallOptions } from './types.ts';

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
}

/**
 * An adapter for any server speaking OpenAI's Chat Completions (OpenAI, Azure-style endpoints,
 * vLLM, Ollama, OpenRouter…). Requests go out as they are; answers are checked for the shape the
 * router relies on, and anything else is a `ProviderError` 'bad_response'.
 */
export function createOpenAiCompatibleAdapter(options: OpenAiCompatibleOptions): ProviderAdapter {
  const provider = options.name ?? 'openai-compatible';
  const url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = { ...options.headers };
  if (options.apiKey !== undefined) headers['authorization'] = `Bearer ${options.apiKey}`;

  const open = (body: unknown, call: ProviderCallOptions | undefined) =>
    openExchange({ provider, url, headers, body, timeoutMs: options.timeoutMs, signal: call?.signal, deadline: call?.deadline });

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
    throw new ProviderError('bad_response', `${provider} sent a stream event that is not JSON: ${text.slice(0, 200)}`, {
      provider,
      cause: error,
    });
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function checkCompletion(body: unknown, provider: string): ChatCompletion {
  const choices = isRecord(body) ? body['choices'] : undefined;
  if (!Array.isArray(choices) || choices.length === 0 || !choices.every((choice) => isRecord(choice) && isRecord(choice['message']))) {
    throw new ProviderError('bad_response', `${provider} sent a completion without choices[].message`, { provider });
  }
  return body as ChatCompletion;
}

function checkChunk(body: unknown, provider: string): ChatCompletionChunk {
  if (isRecord(body) && isRecord(body['error'])) {
    const message = typeof body['error']['message'] === 'string' ? body['error']['message'] : 'no message';
    throw new ProviderError('server', `${provider} reported an error mid-stream: ${message}`, { provider });
  }
  const choices = isRecord(body) ? body['choices'] : undefined;
  if (!Array.isArray(choices) || !choices.every((choice) => isRecord(choice) && isRecord(choice['delta']))) {
    throw new ProviderError('bad_response', `${provider} sent a stream chunk without choices[].delta`, { provider });
  }
  return body as ChatCompletionChunk;
}
