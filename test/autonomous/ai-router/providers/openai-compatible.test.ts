import { afterEach, describe, expect, it } from 'vitest';
import { createOpenAiCompatibleAdapter } from '../../../../src/autonomous/ai-router/providers/openai-compatible.ts';
import { startFakeOpenAi, type FakeProvider } from '../../../support/fake-providers/index.ts';
import { adapterSuite, collect, request } from './adapter.suite.ts';

adapterSuite('OpenAI-compatible', {
  startFake: startFakeOpenAi,
  makeAdapter: (baseUrl, timeoutMs) => createOpenAiCompatibleAdapter({ baseUrl, apiKey: 'sk-test', timeoutMs }),
});

describe('OpenAI-compatible adapter requests', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('posts the request unchanged to {baseUrl}/chat/completions with a bearer token and extra headers', async () => {
    fake = await startFakeOpenAi({ kind: 'answer' });
    const adapter = createOpenAiCompatibleAdapter({
      baseUrl: `${fake.baseUrl}/`,
      apiKey: 'sk-test',
      headers: { 'x-tenant': 't1' },
      timeoutMs: 2000,
    });
    const full = {
      ...request,
      temperature: 0.2,
      max_tokens: 50,
      response_format: { type: 'json_object' as const },
      tool_choice: 'auto' as const,
      stream: true,
    };
    await adapter.complete(full);
    const sent = fake.requests[0]!;
    expect(sent.method).toBe('POST');
    expect(sent.path).toBe('/v1/chat/completions');
    expect(sent.headers['authorization']).toBe('Bearer sk-test');
    expect(sent.headers['x-tenant']).toBe('t1');
    expect(sent.headers['content-type']).toBe('application/json');
    expect(sent.body).toEqual({ ...full, stream: false });
  });

  it('asks for a stream with usage included', async () => {
    fake = await startFakeOpenAi({ kind: 'answer' });
    await collect(createOpenAiCompatibleAdapter({ baseUrl: fake.baseUrl, timeoutMs: 2000 }).stream(request));
    const sent = fake.requests[0]!;
    expect(sent.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(sent.headers['authorization']).toBeUndefined();
  });

  it('passes assistant tool calls and tool results through as OpenAI sends them', async () => {
    fake = await startFakeOpenAi({ kind: 'answer' });
    const conversation = {
      model: 'fake-model',
      messages: [
        { role: 'user' as const, content: 'weather?' },
        {
          role: 'assistant' as const,
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
        },
        { role: 'tool' as const, tool_call_id: 'call_1', content: '3°C' },
      ],
    };
    await createOpenAiCompatibleAdapter({ baseUrl: fake.baseUrl, timeoutMs: 2000 }).complete(conversation);
    expect((fake.requests[0]!.body as { messages: unknown }).messages).toEqual(conversation.messages);
  });
});
