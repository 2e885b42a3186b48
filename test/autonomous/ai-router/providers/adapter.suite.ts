import { afterEach, describe, expect, it } from 'vitest';
import { ProviderError } from '../../../../src/autonomous/ai-router/providers/errors.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ProviderAdapter } from '../../../../src/autonomous/ai-router/providers/types.ts';
import type { FakeBehaviour, FakeProvider, FakeProviderOptions } from '../../../support/fake-providers/index.ts';

/** How the suite builds one provider's fake and adapter. */
export interface AdapterUnderTest {
  readonly startFake: (behaviour: FakeBehaviour, options?: FakeProviderOptions) => Promise<FakeProvider>;
  readonly makeAdapter: (baseUrl: string, timeoutMs: number) => ProviderAdapter;
}

export const request: ChatCompletionRequest = {
  model: 'fake-model',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'héllo wörld ✓ again' },
  ],
};

export const toolRequest: ChatCompletionRequest = {
  ...request,
  tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object' } } }],
};

export async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** The error a promise rejects with, failing the test if it resolves. */
export async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const providerError = async (promise: Promise<unknown>): Promise<ProviderError> => {
  const error = await failureOf(promise);
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
};

/** The behaviour every adapter shares: answers, streams, and how each provider failure is classified. */
export function adapterSuite(name: string, under: AdapterUnderTest): void {
  describe(`${name} adapter`, () => {
    const fakes: FakeProvider[] = [];
    const start = async (behaviour: FakeBehaviour, options?: FakeProviderOptions): Promise<FakeProvider> => {
      const fake = await under.startFake(behaviour, options);
      fakes.push(fake);
      return fake;
    };
    afterEach(async () => {
      await Promise.all(fakes.splice(0).map((fake) => fake.close()));
    });

    it('answers a completion with content, finish_reason and usage', async () => {
      const fake = await start({ kind: 'answer' });
      const completion = await under.makeAdapter(fake.baseUrl, 2000).complete(request);
      expect(completion.object).toBe('chat.completion');
      expect(completion.model).toBe('fake-model');
      expect(completion.choices[0]?.message).toEqual({ role: 'assistant', content: 'echo: héllo wörld ✓ again' });
      expect(completion.choices[0]?.finish_reason).toBe('stop');
      expect(completion.usage).toEqual({ prompt_tokens: 14, completion_tokens: 5, total_tokens: 19 });
    });

    it('streams chunks split across reads into the whole answer, ending with a usage chunk', async () => {
      const fake = await start({ kind: 'answer' });
      const chunks = await collect(under.makeAdapter(fake.baseUrl, 2000).stream(request));
      expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
      expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('echo: héllo wörld ✓ again');
      expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
      expect(chunks.at(-1)?.choices).toEqual([]);
      expect(chunks.at(-1)?.usage).toEqual({ prompt_tokens: 14, completion_tokens: 5, total_tokens: 19 });
      expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.model === 'fake-model')).toBe(true);
    });

    it('keeps the provider connection alive across calls, answered or failed', async () => {
      const fake = await start({ kind: 'answer' });
      const adapter = under.makeAdapter(fake.baseUrl, 2000);
      for (let i = 0; i < 8; i += 1) await adapter.complete(request);
      for (let i = 0; i < 4; i += 1) await collect(adapter.stream(request));
      fake.setBehaviour({ kind: 'rate_limited', retryAfter: '1' });
      for (let i = 0; i < 4; i += 1) await failureOf(adapter.complete(request));
      // undici may open a second socket while the first is still being returned to its pool.
      expect(fake.connections).toBeLessThanOrEqual(2);
    });

    it('answers a tool call with its name and JSON arguments', async () => {
      const fake = await start({ kind: 'tool_call' });
      const completion = await under.makeAdapter(fake.baseUrl, 2000).complete(toolRequest);
      const choice = completion.choices[0];
      expect(choice?.finish_reason).toBe('tool_calls');
      expect(choice?.message.tool_calls).toHaveLength(1);
      expect(choice?.message.tool_calls?.[0]?.function.name).toBe('get_weather');
      expect(JSON.parse(choice?.message.tool_calls?.[0]?.function.arguments ?? '')).toEqual({ query: 'héllo wörld ✓ again' });
    });

    it('streams a tool call whose argument fragments join into the arguments', async () => {
      const fake = await start({ kind: 'tool_call' });
      const chunks = await collect(under.makeAdapter(fake.baseUrl, 2000).stream(toolRequest));
      const calls = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
      expect(calls[0]?.function?.name).toBe('get_weather');
      expect(calls[0]?.id).toBeTypeOf('string');
      expect(calls.every((call) => call.index === 0)).toBe(true);
      expect(JSON.parse(calls.map((call) => call.function?.arguments ?? '').join(''))).toEqual({ query: 'héllo wörld ✓ again' });
      expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('tool_calls');
    });

    it('classifies 429 as rate_limited and retryable, with Retry-After in seconds', async () => {
      const fake = await start({ kind: 'rate_limited', retryAfter: '7' });
      const error = await providerError(under.makeAdapter(fake.baseUrl, 2000).complete(request));
      expect(error).toMatchObject({ kind: 'rate_limited', retryable: true, providerStatus: 429, retryAfterMs: 7000 });
      expect(error.code).toBe('PROVIDER_RATE_LIMITED');
      expect(error.detail).toContain('rate limited');
    });

    it('reads a Retry-After given as an HTTP date', async () => {
      const fake = await start({ kind: 'rate_limited', retryAfter: new Date(Date.now() + 60_000).toUTCString() });
      const error = await providerError(under.makeAdapter(fake.baseUrl, 2000).complete(request));
      expect(error.retryAfterMs).toBeGreaterThan(55_000);
      expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    });

    it('throws a 429 from the stream iterator too', async () => {
      const fake = await start({ kind: 'rate_limited', retryAfter: '1' });
      const error = await providerError(collect(under.makeAdapter(fake.baseUrl, 2000).stream(request)));
      expect(error).toMatchObject({ kind: 'rate_limited', retryable: true, retryAfterMs: 1000 });
    });

    it('classifies 500 and 503 as server errors a router may fall back on', async () => {
      const fake = await start({ kind: 'error', status: 500 });
      const adapter = under.makeAdapter(fake.baseUrl, 2000);
      expect(await providerError(adapter.complete(request))).toMatchObject({
        kind: 'server',
        retryable: true,
        providerStatus: 500,
        status: 502,
      });
      fake.setBehaviour({ kind: 'error', status: 503 });
      expect(await providerError(collect(adapter.stream(request)))).toMatchObject({ kind: 'server', retryable: true, providerStatus: 503 });
    });

    it('classifies 400 as a client error that no fallback would fix', async () => {
      const fake = await start({ kind: 'error', status: 400, message: 'messages: field required' });
      const error = await providerError(under.makeAdapter(fake.baseUrl, 2000).complete(request));
      expect(error).toMatchObject({ kind: 'client', retryable: false, providerStatus: 400, status: 400 });
      expect(error.detail).toContain('messages: field required');
    });

    it('times out a slow provider within its timeout, as a retryable error', async () => {
      const fake = await start({ kind: 'slow', delayMs: 5000 });
      const started = Date.now();
      const error = await providerError(under.makeAdapter(fake.baseUrl, 150).complete(request));
      expect(error).toMatchObject({ kind: 'timeout', retryable: true, status: 504 });
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('shortens the timeout to the caller deadline', async () => {
      const fake = await start({ kind: 'slow', delayMs: 5000 });
      const started = Date.now();
      const error = await providerError(under.makeAdapter(fake.baseUrl, 60_000).complete(request, { deadline: Date.now() + 150 }));
      expect(error.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(3000);
      const late = await providerError(under.makeAdapter(fake.baseUrl, 60_000).complete(request, { deadline: Date.now() - 1 }));
      expect(late.kind).toBe('timeout');
    });

    it('times out a stream whose provider does not answer', async () => {
      const fake = await start({ kind: 'slow', delayMs: 5000 });
      const error = await providerError(collect(under.makeAdapter(fake.baseUrl, 150).stream(request)));
      expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    });

    it('times out a stream that goes quiet mid-way', async () => {
      const fake = await start({ kind: 'endless_stream' }, { chunkDelayMs: 5000 });
      const error = await providerError(collect(under.makeAdapter(fake.baseUrl, 150).stream(request)));
      expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    });

    it('does not count a slow consumer against the provider timeout', async () => {
      const fake = await start({ kind: 'answer' });
      let content = '';
      for await (const chunk of under.makeAdapter(fake.baseUrl, 100).stream(request)) {
        content += chunk.choices[0]?.delta.content ?? '';
        if (content.length < 12) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(content).toBe('echo: héllo wörld ✓ again');
    });

    it('reports a refused connection as unreachable and retryable', async () => {
      const fake = await under.startFake({ kind: 'answer' });
      await fake.close();
      const adapter = under.makeAdapter(fake.baseUrl, 2000);
      expect(await providerError(adapter.complete(request))).toMatchObject({ kind: 'unreachable', retryable: true, status: 502 });
      expect(await providerError(collect(adapter.stream(request)))).toMatchObject({ kind: 'unreachable', retryable: true });
    });

    it('turns a body that is not JSON into bad_response (502), not a crash', async () => {
      const fake = await start({ kind: 'malformed' });
      const error = await providerError(under.makeAdapter(fake.baseUrl, 2000).complete(request));
      expect(error).toMatchObject({ kind: 'bad_response', retryable: false, status: 502, code: 'PROVIDER_BAD_RESPONSE' });
    });

    it('turns JSON without the required fields into bad_response', async () => {
      const fake = await start({ kind: 'missing_fields' });
      expect(await providerError(under.makeAdapter(fake.baseUrl, 2000).complete(request))).toMatchObject({ kind: 'bad_response' });
    });

    it('turns a stream event that is not JSON into bad_response', async () => {
      const fake = await start({ kind: 'malformed' });
      expect(await providerError(collect(under.makeAdapter(fake.baseUrl, 2000).stream(request)))).toMatchObject({ kind: 'bad_response' });
    });

    it('turns a stream cut off before its end into bad_response after the chunks that arrived', async () => {
      const fake = await start({ kind: 'truncated_stream' });
      const received: ChatCompletionChunk[] = [];
      const error = await providerError(
        (async () => {
          for await (const chunk of under.makeAdapter(fake.baseUrl, 2000).stream(request)) received.push(chunk);
        })(),
      );
      expect(error.kind).toBe('bad_response');
      expect(received.length).toBeGreaterThan(0);
    });

    it('cancels a stream on abort: the iterator rejects with the reason and the upstream connection closes', async () => {
      const fake = await start({ kind: 'endless_stream' });
      const controller = new AbortController();
      const abandoned = fake.nextAbandoned();
      let received = 0;
      const reason = new Error('client went away');
      const error = await failureOf(
        (async () => {
          for await (const _chunk of under.makeAdapter(fake.baseUrl, 2000).stream(request, { signal: controller.signal })) {
            received += 1;
            if (received === 3) controller.abort(reason);
          }
        })(),
      );
      expect(error).toBe(reason);
      await abandoned;
      expect(fake.abandoned).toBe(1);
    });

    it('closes the upstream connection when the consumer stops reading', async () => {
      const fake = await start({ kind: 'endless_stream' });
      const abandoned = fake.nextAbandoned();
      for await (const chunk of under.makeAdapter(fake.baseUrl, 2000).stream(request)) {
        if (chunk.choices[0]?.delta.content?.includes('2')) break;
      }
      await abandoned;
      expect(fake.abandoned).toBe(1);
    });

    it('rejects a completion with the abort reason and drops the upstream request', async () => {
      const fake = await start({ kind: 'slow', delayMs: 5000 });
      const controller = new AbortController();
      const abandoned = fake.nextAbandoned();
      const pending = under.makeAdapter(fake.baseUrl, 10_000).complete(request, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('cancelled')), 50);
      expect(await failureOf(pending)).toMatchObject({ message: 'cancelled' });
      await abandoned;
      const already = new AbortController();
      already.abort(new Error('before'));
      expect(await failureOf(under.makeAdapter(fake.baseUrl, 2000).complete(request, { signal: already.signal }))).toMatchObject({
        message: 'before',
      });
    });
  });
}
