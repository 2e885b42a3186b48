import { describe, expect, it } from 'vitest';
import { translateAnthropicStream } from '../../../../src/autonomous/ai-router/providers/anthropic-stream.ts';
import type { ProviderExchange } from '../../../../src/autonomous/ai-router/providers/http.ts';
import { readSse, type SseEvent } from '../../../../src/autonomous/ai-router/providers/sse.ts';
import { ProviderError } from '../../../../src/autonomous/ai-router/providers/errors.ts';
import { collect, failureOf } from './adapter.suite.ts';

/** An exchange over a body delivered in exactly these byte pieces. */
function exchangeOf(pieces: readonly (string | Uint8Array)[]): ProviderExchange & { closed: boolean } {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const piece of pieces) controller.enqueue(typeof piece === 'string' ? encoder.encode(piece) : piece);
      controller.close();
    },
  });
  const exchange = {
    response: new Response(body),
    explain: () => undefined,
    touch: () => undefined,
    pause: () => undefined,
    release: () => undefined,
    closed: false,
    close: () => {
      exchange.closed = true;
    },
  };
  return exchange;
}

async function eventsOf(pieces: readonly (string | Uint8Array)[]): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of readSse(exchangeOf(pieces), 'p')) events.push(event);
  return events;
}

describe('readSse', () => {
  it('reassembles lines split across reads, including inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('data: wörld\n\n');
    const cut = bytes.indexOf(0xc3) + 1;
    expect(await eventsOf(['da', 'ta: he', 'llo\n', '\n', bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual([
      { event: undefined, data: 'hello' },
      { event: undefined, data: 'wörld' },
    ]);
  });

  it('accepts CRLF and CR line ends, even a CRLF split across reads', async () => {
    expect(await eventsOf(['event: a\r', '\ndata: 1\r\n\r\n', 'data: 2\r\r'])).toEqual([
      { event: 'a', data: '1' },
      { event: undefined, data: '2' },
    ]);
  });

  it('joins multi-line data, skips comments, and drops an event left unterminated at the end', async () => {
    expect(await eventsOf([': keep-alive\n', 'data: a\ndata:b\n\n', 'data: cut off'])).toEqual([{ event: undefined, data: 'a\nb' }]);
  });

  it('closes the exchange when the consumer stops early', async () => {
    const exchange = exchangeOf(['data: 1\n\n', 'data: 2\n\n']);
    for await (const _event of readSse(exchange, 'p')) break;
    expect(exchange.closed).toBe(true);
  });
});

async function* eventStream(payloads: readonly unknown[]): AsyncGenerator<SseEvent> {
  for (const payload of payloads) yield { event: undefined, data: typeof payload === 'string' ? payload : JSON.stringify(payload) };
}

const start = { type: 'message_start', message: { id: 'msg_1', model: 'm', usage: { input_tokens: 5, cache_read_input_tokens: 3 } } };

describe('translateAnthropicStream', () => {
  it('maps max_tokens to length and counts cached prompt tokens', async () => {
    const chunks = await collect(
      translateAnthropicStream(
        eventStream([
          start,
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'Hi' } },
          { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'hidden' } },
          { type: 'message_delta', delta: { stop_reason: 'max_tokens' }, usage: { output_tokens: 4 } },
          { type: 'message_stop' },
        ]),
      ),
    );
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? null)).toEqual(['', 'Hi', null, null]);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('length');
    expect(chunks.at(-1)?.usage).toEqual({ prompt_tokens: 8, completion_tokens: 4, total_tokens: 12 });
  });

  it('numbers tool calls apart from text blocks', async () => {
    const chunks = await collect(
      translateAnthropicStream(
        eventStream([
          start,
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 't1', name: 'a', input: {} } },
          { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 't2', name: 'b', input: {} } },
          { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{}' } },
          { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 1 } },
          { type: 'message_stop' },
        ]),
      ),
    );
    const calls = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    expect(calls.map((call) => [call.index, call.id, call.function?.arguments])).toEqual([
      [0, 't1', ''],
      [1, 't2', ''],
      [1, undefined, '{}'],
    ]);
  });

  it('turns an error event into a retryable server error and unreadable events into bad_response', async () => {
    const overloaded = await failureOf(
      collect(
        translateAnthropicStream(eventStream([start, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }])),
      ),
    );
    expect(overloaded).toBeInstanceOf(ProviderError);
    expect(overloaded).toMatchObject({ kind: 'server', retryable: true });
    for (const events of [
      [start, '{not json'],
      [{ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x' } }],
      [start, { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{' } }],
      [start, { type: 'content_block_delta', index: 0 }],
      [start],
    ]) {
      expect(await failureOf(collect(translateAnthropicStream(eventStream(events))))).toMatchObject({ kind: 'bad_response' });
    }
  });
});
