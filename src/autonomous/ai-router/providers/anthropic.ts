import type { EgressPolicy } from '../../../platform/net/egress.ts';
import { translateAnthropicStream } from './anthropic-stream.ts';
import { fromAnthropicResponse, toAnthropicRequest } from './anthropic-translate.ts';
import { openExchange, readJsonBody } from './http.ts';
import { readSse } from './sse.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ProviderAdapter, ProviderCallOptions } from './types.ts';

export interface AnthropicOptions {
  /** Without the `/v1` segment, e.g. `https://api.anthropic.com`. */
  readonly baseUrl: string;
  /** Sent as `x-api-key`. */
  readonly apiKey: string;
  /** Sent as `anthropic-version`; defaults to `2023-06-01`. */
  readonly version?: string;
  /** Longest wait for the answer (non-streaming) or between two reads of a stream. */
  readonly timeoutMs: number;
  /** Anthropic requires `max_tokens`; this is sent when the request has none. Defaults to 1024. */
  readonly defaultMaxTokens?: number;
  /** Extra headers, e.g. `anthropic-beta`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Checks every connection after DNS resolution (a `baseUrl` a caller set); none for the operator's own endpoints. */
  readonly egress?: EgressPolicy;
}

/**
 * An adapter for the Anthropic Messages API (`POST {baseUrl}/v1/messages`) that speaks the
 * canonical OpenAI format on both sides: requests, answers, tool calls and streams are
 * translated, so a caller cannot tell which provider served it. `response_format` has no
 * Messages equivalent and is not sent.
 */
export function createAnthropicAdapter(options: AnthropicOptions): ProviderAdapter {
  const provider = 'anthropic';
  const url = `${options.baseUrl.replace(/\/+$/, '')}/v1/messages`;
  const headers = { ...options.headers, 'x-api-key': options.apiKey, 'anthropic-version': options.version ?? '2023-06-01' };
  const defaultMaxTokens = options.defaultMaxTokens ?? 1024;

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
    protocol: 'anthropic',

    async complete(request, call) {
      const exchange = await open(toAnthropicRequest({ ...request, stream: false }, defaultMaxTokens), call);
      return fromAnthropicResponse(await readJsonBody(exchange, provider));
    },

    async *stream(request: ChatCompletionRequest, call?: ProviderCallOptions): AsyncGenerator<ChatCompletionChunk> {
      const exchange = await open({ ...toAnthropicRequest(request, defaultMaxTokens), stream: true }, call);
      yield* translateAnthropicStream(
        readSse(exchange, provider, (event) => event.event === 'message_stop' || event.data.startsWith('{"type":"message_stop"')),
      );
    },
  };
}
