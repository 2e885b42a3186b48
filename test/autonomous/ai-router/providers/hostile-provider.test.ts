import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnthropicAdapter } from '../../../../src/autonomous/ai-router/providers/anthropic.ts';
import { ProviderError } from '../../../../src/autonomous/ai-router/providers/errors.ts';
import { MAX_BODY_BYTES } from '../../../../src/autonomous/ai-router/providers/http.ts';
import { createOpenAiCompatibleAdapter } from '../../../../src/autonomous/ai-router/providers/openai-compatible.ts';
import { MAX_EVENT_CHARS } from '../../../../src/autonomous/ai-router/providers/sse.ts';
import { createEgressPolicy } from '../../../../src/platform/net/egress.ts';
import { sendText, startHostileProvider, type HostileProvider } from '../../../support/hostile-provider.ts';
import { collect, failureOf, request } from './adapter.suite.ts';

// OWASP API10 (unsafe consumption of APIs): whatever a provider sends, the adapter answers the
// canonical format or a ProviderError; nothing else it sent reaches the caller.
describe('a provider gone bad', () => {
  let hostile: HostileProvider;
  let elsewhere: HostileProvider;
  beforeAll(async () => {
    hostile = await startHostileProvider();
    elsewhere = await startHostileProvider(sendText('{"choices":[{"message":{"role":"assistant","content":"from the redirect"}}]}'));
  });
  afterAll(async () => {
    await hostile.close();
    await elsewhere.close();
  });

  const openai = () => createOpenAiCompatibleAdapter({ baseUrl: `${hostile.origin}/v1`, timeoutMs: 5000, name: 'hostile' });
  const anthropic = () => createAnthropicAdapter({ baseUrl: hostile.origin, apiKey: 'k', timeoutMs: 5000 });
  const providerError = async (promise: Promise<unknown>): Promise<ProviderError> => {
    const error = await failureOf(promise);
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  };
  const completion = (extra: Record<string, unknown> = {}, message: Record<string, unknown> = {}) =>
    JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi', ...message }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      ...extra,
    });

  it('does not follow a redirect (the call could be sent on to an internal address): bad_response, 502', async () => {
    const before = elsewhere.hits;
    hostile.answer((_req, res) => res.writeHead(307, { location: `${elsewhere.origin}/v1/chat/completions` }).end());
    const error = await providerError(openai().complete(request));
    expect(error.kind).toBe('bad_response');
    expect(error.status).toBe(502);
    expect(error.detail).toMatch(/307, a redirect/);
    expect(elsewhere.hits).toBe(before);
  });

  it('stops reading an answer past the size limit', async () => {
    const huge = `{"choices":[{"message":{"role":"assistant","content":"${'x'.repeat(MAX_BODY_BYTES)}"}}]}`;
    hostile.answer(sendText(huge));
    const error = await providerError(openai().complete(request));
    expect(error.kind).toBe('bad_response');
    expect(error.detail).toMatch(/larger than/);
  });

  it('reads only the start of a huge error body', async () => {
    hostile.answer(sendText(`{"error":{"message":"${'e'.repeat(MAX_BODY_BYTES)}"}}`, 500));
    const error = await providerError(openai().complete(request));
    expect(error.kind).toBe('server');
    expect(error.detail.length).toBeLessThan(1000);
  });

  it('refuses JSON nested too deep to serialise', async () => {
    hostile.answer(
      sendText(`{"choices":[{"message":{"role":"assistant","content":"hi"}}],"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    );
    expect((await providerError(openai().complete(request))).detail).toMatch(/nested deeper/);
    hostile.answer(
      sendText(`{"content":[{"type":"tool_use","id":"t","name":"f","input":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}],"usage":{}}`),
    );
    expect((await providerError(anthropic().complete(request))).kind).toBe('bad_response');
  });

  it('passes on only the canonical fields, each checked for its type', async () => {
    const body = completion({ injected: '<script>', choices_extra: 1 }, { content: 'hi', secret: 'leak', tool_calls: null });
    hostile.answer(sendText(body.replace('{"id"', '{"__proto__":{"polluted":true},"id"')));
    const answer = await openai().complete(request);
    expect(Object.getPrototypeOf(answer)).toBe(Object.prototype);
    expect(answer).toEqual({
      id: 'c1',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('refuses content that is not text and tool calls that are not calls', async () => {
    hostile.answer(sendText(completion({}, { content: { html: '<b>' } })));
    expect((await providerError(openai().complete(request))).detail).toMatch(/content that is not text/);
    hostile.answer(sendText(completion({}, { tool_calls: [{ id: 1, function: { name: 'f' } }] })));
    expect((await providerError(openai().complete(request))).kind).toBe('bad_response');
  });

  it('drops token counts a provider could lower its charge with, so the proxy counts itself', async () => {
    hostile.answer(sendText(completion({ usage: { prompt_tokens: -1_000_000, completion_tokens: 2, total_tokens: -999_998 } })));
    expect((await openai().complete(request)).usage).toBeUndefined();
    hostile.answer(sendText(completion({ usage: { prompt_tokens: '9', completion_tokens: 1.5 } })));
    expect((await openai().complete(request)).usage).toBeUndefined();
    hostile.answer(sendText('{"content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":-5,"output_tokens":1}}'));
    expect((await providerError(anthropic().complete(request))).detail).toMatch(/token count/);
  });

  it('ends a stream whose event never ends', async () => {
    hostile.answer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"');
      const piece = 'y'.repeat(64 * 1024);
      // Enough for the limit and then some; the adapter must give up before the end.
      for (let sent = 0; sent <= MAX_EVENT_CHARS * 2; sent += piece.length) res.write(piece);
      res.end();
    });
    const error = await providerError(collect(openai().stream(request)));
    expect(error.kind).toBe('bad_response');
    expect(error.detail).toMatch(/longer than/);
  });

  it('checks stream chunks like whole answers', async () => {
    hostile.answer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"choices":[{"delta":{"content":{"nested":"object"}}}]}\n\n');
    });
    expect((await providerError(collect(openai().stream(request)))).detail).toMatch(/content that is not text/);
  });
});

describe('egress: a base URL a caller set, checked when connecting', () => {
  let target: HostileProvider;
  beforeAll(async () => {
    target = await startHostileProvider(sendText('{"choices":[{"message":{"role":"assistant","content":"reached"}}]}'));
  });
  afterAll(async () => {
    await target.close();
  });

  it('refuses to connect when the name resolves to loopback: PROVIDER_EGRESS_REFUSED, nothing sent', async () => {
    const port = new URL(target.origin).port;
    const before = target.hits;
    for (const adapter of [
      createOpenAiCompatibleAdapter({
        baseUrl: `http://localhost:${port}/v1`,
        timeoutMs: 2000,
        egress: createEgressPolicy({ allow_private: false, allow: [] }),
      }),
      createAnthropicAdapter({
        baseUrl: `http://localhost:${port}`,
        apiKey: 'k',
        timeoutMs: 2000,
        egress: createEgressPolicy({ allow_private: false, allow: [] }),
      }),
    ]) {
      const error = await failureOf(adapter.complete(request));
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as ProviderError).code).toBe('PROVIDER_EGRESS_REFUSED');
      expect((error as ProviderError).status).toBe(502);
      expect((error as ProviderError).retryable).toBe(true);
      // What an internal name resolves to is not the client's to learn.
      expect((error as ProviderError).detail).not.toMatch(/127\.0\.0\.1/);
    }
    expect(target.hits).toBe(before);
  });

  it('connects where the operator allowed it', async () => {
    const adapter = createOpenAiCompatibleAdapter({
      baseUrl: `${target.origin}/v1`,
      timeoutMs: 2000,
      egress: createEgressPolicy({ allow_private: false, allow: ['127.0.0.1'] }),
    });
    expect((await adapter.complete(request)).choices[0]?.message.content).toBe('reached');
  });
});
