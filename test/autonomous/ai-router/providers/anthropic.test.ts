import { afterEach, describe, expect, it } from 'vitest';
import { createAnthropicAdapter } from '../../../../src/autonomous/ai-router/providers/anthropic.ts';
import { ProviderError } from '../../../../src/autonomous/ai-router/providers/errors.ts';
import type { ChatCompletionRequest } from '../../../../src/autonomous/ai-router/providers/types.ts';
import { startFakeAnthropic, type FakeProvider } from '../../../support/fake-providers/index.ts';
import { adapterSuite, collect, failureOf, request, toolRequest } from './adapter.suite.ts';

adapterSuite('Anthropic', {
  startFake: startFakeAnthropic,
  makeAdapter: (baseUrl, timeoutMs) => createAnthropicAdapter({ baseUrl, apiKey: 'sk-ant-test', timeoutMs }),
});

const conversation: ChatCompletionRequest = {
  model: 'claude-fake',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'system', content: [{ type: 'text', text: 'Answer in English.' }] },
    { role: 'user', content: 'Weather in Oslo and Bergen?' },
    {
      role: 'assistant',
      content: 'Looking it up.',
      tool_calls: [
        { id: 'toolu_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } },
        { id: 'toolu_2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bergen"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'toolu_1', content: '3°C' },
    { role: 'tool', tool_call_id: 'toolu_2', content: [{ type: 'text', text: '7°C' }] },
    { role: 'user', content: 'Thanks, and tomorrow?' },
  ],
  tools: [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Current weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
      },
    },
    { type: 'function', function: { name: 'now' } },
  ],
  tool_choice: { type: 'function', function: { name: 'get_weather' } },
  temperature: 0.3,
  response_format: { type: 'json_object' },
};

describe('Anthropic adapter translation', () => {
  let fake: FakeProvider | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('sends x-api-key and anthropic-version to {baseUrl}/v1/messages', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    await createAnthropicAdapter({ baseUrl: `${fake.baseUrl}/`, apiKey: 'sk-ant-test', timeoutMs: 2000 }).complete(request);
    await createAnthropicAdapter({
      baseUrl: fake.baseUrl,
      apiKey: 'k2',
      version: '2024-01-01',
      headers: { 'anthropic-beta': 'x' },
      timeoutMs: 2000,
    }).complete(request);
    const [first, second] = fake.requests;
    expect(first?.path).toBe('/v1/messages');
    expect(first?.headers['x-api-key']).toBe('sk-ant-test');
    expect(first?.headers['anthropic-version']).toBe('2023-06-01');
    expect(first?.headers['authorization']).toBeUndefined();
    expect(second?.headers['x-api-key']).toBe('k2');
    expect(second?.headers['anthropic-version']).toBe('2024-01-01');
    expect(second?.headers['anthropic-beta']).toBe('x');
  });

  it('translates system prompts, tools, tool calls and tool results into a Messages request', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    await createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000 }).complete(conversation);
    expect(fake.requests[0]?.body).toEqual({
      model: 'claude-fake',
      max_tokens: 1024,
      system: 'Be brief.\n\nAnswer in English.',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo and Bergen?' }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Looking it up.' },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
            { type: 'tool_use', id: 'toolu_2', name: 'get_weather', input: { city: 'Bergen' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: '3°C' },
            { type: 'tool_result', tool_use_id: 'toolu_2', content: '7°C' },
            { type: 'text', text: 'Thanks, and tomorrow?' },
          ],
        },
      ],
      tools: [
        { name: 'get_weather', description: 'Current weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
        { name: 'now', input_schema: { type: 'object', properties: {} } },
      ],
      tool_choice: { type: 'tool', name: 'get_weather' },
      temperature: 0.3,
    });
  });

  it('keeps a given max_tokens, maps tool_choice values and asks for a stream', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    const adapter = createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000, defaultMaxTokens: 99 });
    await adapter.complete({ ...request, tool_choice: 'required' });
    await adapter.complete({ ...request, max_tokens: 7, tool_choice: 'none' });
    await collect(adapter.stream({ ...request, tool_choice: 'auto' }));
    const bodies = fake.requests.map((sent) => sent.body as Record<string, unknown>);
    expect(bodies.map((body) => [body['max_tokens'], body['tool_choice'], body['stream']])).toEqual([
      [99, { type: 'any' }, undefined],
      [7, { type: 'none' }, undefined],
      [99, { type: 'auto' }, true],
    ]);
  });

  it('carries image parts as image blocks, in order: inline data as base64, web URLs by reference', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    await createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000 }).complete({
      model: 'claude-fake',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'data:image/PNG;base64,iVBORw0KGgo=' } },
            { type: 'text', text: 'What is in this picture,' },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg', detail: 'low' } },
            { type: 'text', text: 'and this one?' },
          ],
        },
      ],
    });
    expect((fake.requests[0]?.body as { messages: unknown }).messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'text', text: 'What is in this picture,' },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: 'and this one?' },
        ],
      },
    ]);
  });

  it('refuses an image that is neither a web URL nor a data: URL of an image, before calling the provider', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    const error = await failureOf(
      createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000 }).complete({
        model: 'claude-fake',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }],
      }),
    );
    expect(error).toMatchObject({ kind: 'client', retryable: false });
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses tool call arguments that are not JSON before calling the provider, as a client error', async () => {
    fake = await startFakeAnthropic({ kind: 'answer' });
    const bad: ChatCompletionRequest = {
      model: 'claude-fake',
      messages: [
        { role: 'assistant', content: null, tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{oops' } }] },
      ],
    };
    const error = await failureOf(createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000 }).complete(bad));
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ kind: 'client', retryable: false });
    expect(fake.requests).toHaveLength(0);
  });

  it('translates a tool_use answer into OpenAI tool_calls with JSON-text arguments', async () => {
    fake = await startFakeAnthropic({ kind: 'tool_call', name: 'get_weather', arguments: { city: 'Oslo', days: 2 } });
    const completion = await createAnthropicAdapter({ baseUrl: fake.baseUrl, apiKey: 'k', timeoutMs: 2000 }).complete(toolRequest);
    expect(completion.id).toBe('msg_fake');
    expect(completion.choices).toEqual([
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'toolu_fake_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo","days":2}' } }],
        },
        finish_reason: 'tool_calls',
      },
    ]);
  });
});
