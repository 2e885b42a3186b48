import { count, finishReasonOf, isRecord, promptTokensOf } from './anthropic-translate.ts';
import { boundedText, ProviderError } from './errors.ts';
import { excerpted } from './http.ts';
import type { SseEvent } from './sse.ts';
import type { ChatCompletionChunk, FinishReason } from './types.ts';

type Delta = ChatCompletionChunk['choices'][number]['delta'];

const bad = (detail: string): ProviderError => new ProviderError('bad_response', `anthropic stream: ${detail}`, { provider: 'anthropic' });

function parse(event: SseEvent): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(event.data) as unknown;
  } catch (error) {
    throw new ProviderError('bad_response', 'anthropic stream: event data is not JSON', {
      provider: 'anthropic',
      cause: excerpted(event.data, error),
    });
  }
  if (!isRecord(body)) throw bad('event data is not an object');
  return body;
}

/**
 * Anthropic Messages stream events as OpenAI chunks, in the order OpenAI sends them: a first
 * chunk with the role, content and tool-call deltas, a chunk with the finish_reason, and a last
 * usage-only chunk. Throws `ProviderError` 'bad_response' for an event it cannot read or a
 * stream that ends before `message_stop`, and 'server' for an `error` event (e.g. overloaded).
 */
export async function* translateAnthropicStream(events: AsyncIterable<SseEvent>): AsyncGenerator<ChatCompletionChunk> {
  let id = '';
  let model = '';
  const created = Math.floor(Date.now() / 1000);
  let promptTokens = 0;
  let completionTokens = 0;
  let started = false;
  // Anthropic numbers every content block; OpenAI numbers only tool calls.
  const toolIndexOfBlock = new Map<number, number>();
  const chunk = (delta: Delta, finishReason: FinishReason | null = null): ChatCompletionChunk => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  });

  for await (const event of events) {
    const body = parse(event);
    const type = body['type'] ?? event.event;
    if (type !== 'message_start' && type !== 'ping' && type !== 'error' && !started)
      throw bad(`${JSON.stringify(type)} before message_start`);
    switch (type) {
      case 'message_start': {
        const message = body['message'];
        if (!isRecord(message)) throw bad('message_start without a message');
        id = typeof message['id'] === 'string' ? message['id'] : '';
        model = typeof message['model'] === 'string' ? message['model'] : '';
        if (isRecord(message['usage'])) {
          promptTokens = promptTokensOf(message['usage']);
          completionTokens = count(message['usage']['output_tokens']);
        }
        started = true;
        yield chunk({ role: 'assistant', content: '' });
        break;
      }
      case 'content_block_start': {
        const block = body['content_block'];
        const index = body['index'];
        if (!isRecord(block) || typeof index !== 'number') throw bad('content_block_start without index and content_block');
        if (block['type'] === 'tool_use') {
          if (typeof block['id'] !== 'string' || typeof block['name'] !== 'string') throw bad('tool_use block without id and name');
          const toolIndex = toolIndexOfBlock.size;
          toolIndexOfBlock.set(index, toolIndex);
          yield chunk({
            tool_calls: [{ index: toolIndex, id: block['id'], type: 'function', function: { name: block['name'], arguments: '' } }],
          });
        } else if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') {
          yield chunk({ content: block['text'] });
        }
        break;
      }
      case 'content_block_delta': {
        const delta = body['delta'];
        if (!isRecord(delta)) throw bad('content_block_delta without a delta');
        if (delta['type'] === 'text_delta') {
          if (typeof delta['text'] !== 'string') throw bad('text_delta without text');
          yield chunk({ content: delta['text'] });
        } else if (delta['type'] === 'input_json_delta') {
          const toolIndex = typeof body['index'] === 'number' ? toolIndexOfBlock.get(body['index']) : undefined;
          if (toolIndex === undefined || typeof delta['partial_json'] !== 'string') throw bad('input_json_delta outside a tool_use block');
          yield chunk({ tool_calls: [{ index: toolIndex, function: { arguments: delta['partial_json'] } }] });
        }
        // thinking and signature deltas have no place in the OpenAI shape: dropped.
        break;
      }
      case 'message_delta': {
        const delta = body['delta'];
        if (isRecord(body['usage'])) {
          if (body['usage']['output_tokens'] !== undefined) completionTokens = count(body['usage']['output_tokens']);
          // Newer API versions report (final) input tokens here too.
          const prompt = promptTokensOf(body['usage']);
          if (prompt > 0) promptTokens = prompt;
        }
        if (isRecord(delta) && delta['stop_reason'] !== undefined && delta['stop_reason'] !== null) {
          yield chunk({}, finishReasonOf(delta['stop_reason']));
        }
        break;
      }
      case 'message_stop':
        yield {
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [],
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
        };
        return;
      case 'error': {
        const error = isRecord(body['error']) ? body['error'] : {};
        const type = typeof error['type'] === 'string' ? boundedText(error['type'], 64) : 'error';
        const message = typeof error['message'] === 'string' ? boundedText(error['message']) : 'no message';
        throw new ProviderError('server', `anthropic stream failed: ${type}: ${message}`, { provider: 'anthropic' });
      }
      default:
        // ping, content_block_stop and event types added later carry nothing a chunk needs.
        break;
    }
  }
  throw bad('ended before message_stop');
}
