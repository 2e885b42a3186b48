import {
  echoOf,
  startFakeProvider,
  toolCallOf,
  type FakeBehaviour,
  type FakeProvider,
  type FakeProviderOptions,
  type RecordedRequest,
  type WireFormat,
} from './server.ts';

const event = (type: string, payload: Record<string, unknown>): string =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;

const anthropicWire: WireFormat = {
  path: '/v1/messages',
  baseSuffix: '',
  answer(body, behaviour) {
    const { pieces, promptTokens, completionTokens } = echoOf(body);
    const tool = behaviour.kind === 'tool_call' ? toolCallOf(body, behaviour) : undefined;
    return {
      id: 'msg_fake',
      type: 'message',
      role: 'assistant',
      model: body['model'],
      content:
        tool === undefined
          ? [{ type: 'text', text: pieces.join('') }]
          : [{ type: 'tool_use', id: 'toolu_fake_1', name: tool.name, input: JSON.parse(tool.argumentsJson) as unknown }],
      stop_reason: tool === undefined ? 'end_turn' : 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: promptTokens, output_tokens: completionTokens },
    };
  },
  streamEvents(body, behaviour) {
    const { pieces, promptTokens, completionTokens } = echoOf(body);
    const events = [
      event('message_start', {
        message: {
          id: 'msg_fake',
          type: 'message',
          role: 'assistant',
          model: body['model'],
          content: [],
          stop_reason: null,
          usage: { input_tokens: promptTokens, output_tokens: 1 },
        },
      }),
      event('ping', {}),
    ];
    if (behaviour.kind === 'tool_call') {
      const tool = toolCallOf(body, behaviour);
      const half = Math.floor(tool.argumentsJson.length / 2);
      events.push(
        event('content_block_start', { index: 0, content_block: { type: 'tool_use', id: 'toolu_fake_1', name: tool.name, input: {} } }),
        event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: tool.argumentsJson.slice(0, half) } }),
        event('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: tool.argumentsJson.slice(half) } }),
        event('content_block_stop', { index: 0 }),
      );
    } else {
      events.push(
        event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
        ...pieces.map((piece) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } })),
        event('content_block_stop', { index: 0 }),
      );
    }
    events.push(
      event('message_delta', {
        delta: { stop_reason: behaviour.kind === 'tool_call' ? 'tool_use' : 'end_turn', stop_sequence: null },
        usage: { output_tokens: completionTokens },
      }),
      event('message_stop', {}),
    );
    return events;
  },
  contentEvent: (piece) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }),
  errorBody: (status, message) => ({
    type: 'error',
    error: {
      type:
        status === 429 ? 'rate_limit_error' : status === 529 ? 'overloaded_error' : status >= 500 ? 'api_error' : 'invalid_request_error',
      message,
    },
  }),
  missingFields: () => ({ id: 'msg_fake', type: 'message', role: 'assistant' }),
};

/**
 * A real HTTP server speaking the Anthropic Messages API on `POST /v1/messages` (`baseUrl` is
 * the origin). It answers `echo: <last user text>` and records every request.
 */
export const startFakeAnthropic = (
  behaviour: FakeBehaviour | ((request: RecordedRequest) => FakeBehaviour),
  options?: FakeProviderOptions,
): Promise<FakeProvider> => startFakeProvider(anthropicWire, behaviour, options);
