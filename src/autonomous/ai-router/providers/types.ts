/**
 * The router's canonical chat format: the OpenAI Chat Completions wire format. Every provider
 * adapter takes a request in this shape and answers in it, so the proxy, the cache and the
 * client see one format whichever provider served the call. Field names are the wire's.
 */

/** A function the model may call, declared as OpenAI does. */
export interface ChatTool {
  readonly type: 'function';
  readonly function: {
    readonly name: string;
    readonly description?: string;
    /** JSON Schema of the arguments object. */
    readonly parameters?: Readonly<Record<string, unknown>>;
  };
}

/** A call the assistant made; `arguments` is a JSON text, as on the wire. */
export interface ChatToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; readonly arguments: string };
}

/** A content part of a multi-part message: text, or (in user messages) an image by URL or `data:` URL. */
export type ChatContentPart =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'image_url'; readonly image_url: { readonly url: string; readonly detail?: 'auto' | 'low' | 'high' } };

export type ChatMessage =
  | { readonly role: 'system'; readonly content: string | readonly ChatContentPart[] }
  | { readonly role: 'user'; readonly content: string | readonly ChatContentPart[] }
  | {
      readonly role: 'assistant';
      readonly content: string | readonly ChatContentPart[] | null;
      readonly tool_calls?: readonly ChatToolCall[];
    }
  | { readonly role: 'tool'; readonly content: string | readonly ChatContentPart[]; readonly tool_call_id: string };

export type ChatToolChoice = 'auto' | 'none' | 'required' | { readonly type: 'function'; readonly function: { readonly name: string } };

export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly ChatTool[];
  readonly tool_choice?: ChatToolChoice;
  readonly temperature?: number;
  readonly max_tokens?: number;
  readonly stream?: boolean;
  readonly response_format?: { readonly type: 'text' | 'json_object' | 'json_schema'; readonly json_schema?: unknown };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface ChatUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface ChatCompletion {
  readonly id: string;
  readonly object: 'chat.completion';
  readonly created: number;
  readonly model: string;
  readonly choices: readonly {
    readonly index: number;
    readonly message: { readonly role: 'assistant'; readonly content: string | null; readonly tool_calls?: readonly ChatToolCall[] };
    readonly finish_reason: FinishReason | null;
  }[];
  readonly usage?: ChatUsage;
}

/** A fragment of a tool call in a stream: the first carries id and name, later ones more `arguments` text. */
export interface ChatToolCallDelta {
  readonly index: number;
  readonly id?: string;
  readonly type?: 'function';
  readonly function?: { readonly name?: string; readonly arguments?: string };
}

/**
 * One streamed chunk. Content chunks have one choice; the final usage chunk (sent last, as
 * OpenAI does with `stream_options.include_usage`) has no choices and carries `usage`.
 */
export interface ChatCompletionChunk {
  readonly id: string;
  readonly object: 'chat.completion.chunk';
  readonly created: number;
  readonly model: string;
  readonly choices: readonly {
    readonly index: number;
    readonly delta: { readonly role?: 'assistant'; readonly content?: string | null; readonly tool_calls?: readonly ChatToolCallDelta[] };
    readonly finish_reason: FinishReason | null;
  }[];
  readonly usage?: ChatUsage | null;
}

/** How one call is bounded. */
export interface ProviderCallOptions {
  /** Cancels the call; the adapter rejects with the signal's reason and closes the upstream connection. */
  readonly signal?: AbortSignal;
  /**
   * Absolute time (epoch ms) by which the call must be done: the adapter's timeout is shortened
   * to it, so a fallback chain never outlives the client's request.
   */
  readonly deadline?: number;
}

/**
 * Carries a chat completion to one provider. Implementations throw `ProviderError` for every
 * provider-side failure (never a raw fetch or parse error), and rethrow the caller's abort reason
 * when `signal` aborts.
 */
export interface ProviderAdapter {
  /** The provider's wire protocol, for logs and metrics. */
  readonly protocol: 'openai' | 'anthropic';
  /** One non-streaming completion. `request.stream` is ignored. */
  complete(request: ChatCompletionRequest, options?: ProviderCallOptions): Promise<ChatCompletion>;
  /**
   * A streaming completion as OpenAI-shaped chunks, ending with a usage-only chunk when the
   * provider reports usage. The first failure (HTTP status, malformed event, stream cut before
   * its end) is thrown from the iterator; breaking out of the loop closes the upstream connection.
   */
  stream(request: ChatCompletionRequest, options?: ProviderCallOptions): AsyncIterable<ChatCompletionChunk>;
}
