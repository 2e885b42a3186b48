import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnthropicAdapter } from '../../../../src/autonomous/ai-router/providers/anthropic.ts';
import { createOpenAiCompatibleAdapter } from '../../../../src/autonomous/ai-router/providers/openai-compatible.ts';
import type { ChatCompletionChunk, ProviderAdapter } from '../../../../src/autonomous/ai-router/providers/types.ts';
import { startFakeAnthropic, startFakeOpenAi, type FakeProvider } from '../../../support/fake-providers/index.ts';
import { collect, request, toolRequest } from './adapter.suite.ts';

/** A chunk without what legitimately differs between providers: ids and timestamps. */
const comparable = (chunk: ChatCompletionChunk): unknown => ({
  ...chunk,
  id: '<id>',
  created: 0,
  choices: chunk.choices.map((choice) => ({
    ...choice,
    delta: {
      ...choice.delta,
      ...(choice.delta.tool_calls === undefined
        ? {}
        : { tool_calls: choice.delta.tool_calls.map((call) => (call.id === undefined ? call : { ...call, id: '<id>' })) }),
    },
  })),
});

describe('streams from either provider', () => {
  let openAi: FakeProvider;
  let anthropic: FakeProvider;
  const adapters: Record<string, ProviderAdapter> = {};

  beforeAll(async () => {
    [openAi, anthropic] = await Promise.all([startFakeOpenAi({ kind: 'answer' }), startFakeAnthropic({ kind: 'answer' })]);
    adapters['openai'] = createOpenAiCompatibleAdapter({ baseUrl: openAi.baseUrl, apiKey: 'k', timeoutMs: 2000 });
    adapters['anthropic'] = createAnthropicAdapter({ baseUrl: anthropic.baseUrl, apiKey: 'k', timeoutMs: 2000 });
  });
  afterAll(async () => {
    await Promise.all([openAi.close(), anthropic.close()]);
  });

  it('have the same shape, chunk for chunk, for a text answer', async () => {
    const fromOpenAi = await collect(adapters['openai']!.stream(request));
    const fromAnthropic = await collect(adapters['anthropic']!.stream(request));
    expect(fromAnthropic.length).toBeGreaterThan(3);
    expect(fromAnthropic.map(comparable)).toEqual(fromOpenAi.map(comparable));
  });

  it('have the same shape, chunk for chunk, for a tool call', async () => {
    openAi.setBehaviour({ kind: 'tool_call' });
    anthropic.setBehaviour({ kind: 'tool_call' });
    const fromOpenAi = await collect(adapters['openai']!.stream(toolRequest));
    const fromAnthropic = await collect(adapters['anthropic']!.stream(toolRequest));
    expect(fromAnthropic.some((chunk) => chunk.choices[0]?.delta.tool_calls !== undefined)).toBe(true);
    expect(fromAnthropic.map(comparable)).toEqual(fromOpenAi.map(comparable));
  });

  it('give the same completion as the non-streaming call', async () => {
    openAi.setBehaviour({ kind: 'answer' });
    anthropic.setBehaviour({ kind: 'answer' });
    for (const adapter of Object.values(adapters)) {
      const chunks = await collect(adapter.stream(request));
      const completion = await adapter.complete(request);
      expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(completion.choices[0]?.message.content);
      expect(chunks.at(-1)?.usage).toEqual(completion.usage);
      expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe(completion.choices[0]?.finish_reason);
    }
  });
});
