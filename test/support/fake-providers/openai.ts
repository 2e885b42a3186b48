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

const event = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;

const openAiWire: WireFormat = {
  path: '/v1/chat/completions',
  baseSuffix: '/v1',
  answer(body, behaviour) {
    const { pieces, promptTokens, completionTokens } = echoOf(body);
    const tool = behaviour.kind === 'tool_call' ? toolCallOf(body, behaviour) : undefined;
    return {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: body['model'],
      choices: [
        {
          index: 0,
          message:
            tool === undefined
              ? { role: 'assistant', content: pieces.join('') }
              : {
                  role: 'assistant',
                  content: null,
                  tool_calls: [{ id: 'call_fake_1', type: 'function', function: { name: tool.name, arguments: tool.argumentsJson } }],
                },
          finish_reason: tool === undefined ? 'stop' : 'tool_calls',
        },
      ],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  },
  streamEvents(body, behaviour) {
    const { pieces, promptTokens, completionTokens } = echoOf(body);
    const base = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 1_700_000_000, model: body['model'] };
    const chunk = (delta: unknown, finishReason: string | null = null): string =>
      event({ ...base, choices: [{ index: 0, delta, finish_reason: finishReason }] });
    const events = [chunk({ role: 'assistant', content: '' })];
    if (behaviour.kind === 'tool_call') {
      const tool = toolCallOf(body, behaviour);
      const half = Math.floor(tool.argumentsJson.length / 2);
      events.push(
        chunk({ tool_calls: [{ index: 0, id: 'call_fake_1', type: 'function', function: { name: tool.name, arguments: '' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: tool.argumentsJson.slice(0, half) } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: tool.argumentsJson.slice(half) } }] }),
        chunk({}, 'tool_calls'),
      );
    } else {
      events.push(...pieces.map((piece) => chunk({ content: piece })), chunk({}, 'stop'));
    }
    const streamOptions = body['stream_options'] as { include_usage?: boolean } | undefined;
    if (streamOptions?.include_usage === true) {
      events.push(
        event({
          ...base,
          choices: [],
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
        }),
      );
    }
    events.push('data: [DONE]\n\n');
    return events;
  },
  contentEvent: (piece) =>
    event({
      id: 'chatcmpl-fake',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'endless',
      choices: [{ index: 0, delta: { content: piece }, finish_reason: null }],
    }),
  errorBody: (status, message) => ({
    error: { message, type: status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : 'invalid_request_error', code: null },
  }),
  missingFields: () => ({ id: 'chatcmpl-fake', object: 'chat.completion', model: 'fake' }),
};

/**
 * A real HTTP server speaking OpenAI's Chat Completions on `POST /v1/chat/completions`
 * (`baseUrl` ends in `/v1`). It answers `echo: <last user text>` and records every request.
 */
export const startFakeOpenAi = (
  behaviour: FakeBehaviour | ((request: RecordedRequest) => FakeBehaviour),
  options?: FakeProviderOptions,
): Promise<FakeProvider> => startFakeProvider(openAiWire, behaviour, options);
