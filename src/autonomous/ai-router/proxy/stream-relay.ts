import type { ChatCompletionChunk, ChatUsage } from '../providers/index.ts';

/** Where a stream goes once the proxy has committed to a provider. */
export interface StreamSink {
  /** Called once, with the first chunk in hand: the status is 200 from here on. */
  open(headers: Readonly<Record<string, string>>): void;
  /** Writes SSE text; resolves when the client can take more. */
  write(text: string): Promise<void> | undefined;
  end(): void;
}

/** A provider stream whose first chunk has arrived. */
export interface OpenStream {
  readonly iterator: AsyncIterator<ChatCompletionChunk>;
  readonly first: IteratorResult<ChatCompletionChunk>;
}

/** What a relayed stream passed on to the client, and how it ended. */
export type Relayed = {
  /** The provider's usage, when its usage chunk came before the end. */
  readonly usage: ChatUsage | undefined;
  /** The content and tool-call text of every chunk passed on: what the proxy counts when `usage` is missing. */
  readonly text: string;
} & ({ readonly complete: true } | { readonly complete: false; readonly error: unknown });

export interface RelayOptions {
  readonly stream: OpenStream;
  readonly sink: StreamSink;
  /** The client's: aborts when it goes away. */
  readonly signal: AbortSignal;
  /** The model name the client sees in each chunk. */
  readonly model: string;
  /** Pass on the usage-only chunk (the client asked with `stream_options.include_usage`). */
  readonly includeUsage: boolean;
}

export const sse = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;

/**
 * Passes a provider's chunks on to the client until the stream ends, the provider fails or the
 * client goes away. Never throws: an early end is returned with its error, after the provider
 * call was cancelled (its iterator returned, which closes the upstream connection), with what had
 * been passed on until then, so that the caller can charge it.
 */
export async function relayChunks(options: RelayOptions): Promise<Relayed> {
  const { stream, sink, signal, model, includeUsage } = options;
  let usage: ChatUsage | undefined;
  let text = '';
  try {
    let next = stream.first;
    while (next.done !== true) {
      const chunk = next.value;
      if (chunk.usage !== undefined && chunk.usage !== null) usage = chunk.usage;
      for (const choice of chunk.choices) text += textOf(choice.delta);
      if (chunk.choices.length > 0 || includeUsage) await sink.write(sse({ ...chunk, model }));
      signal.throwIfAborted();
      next = await stream.iterator.next();
    }
    return { usage, text, complete: true };
  } catch (error) {
    // The provider's own failure, or our abort: either way there is nothing more to read from it.
    await stream.iterator.return?.().catch(() => undefined);
    return { usage, text, complete: false, error };
  }
}

/** The text a delta carries: content, and a tool call's name and argument fragment (the model wrote those too). */
function textOf(delta: ChatCompletionChunk['choices'][number]['delta']): string {
  let text = typeof delta.content === 'string' ? delta.content : '';
  for (const call of delta.tool_calls ?? []) text += (call.function?.name ?? '') + (call.function?.arguments ?? '');
  return text;
}
