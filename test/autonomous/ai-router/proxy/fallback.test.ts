import { request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FakeBehaviour } from '../../../support/fake-providers/index.ts';
import { chatBody, costFor, sseData, startProxyHarness, type CallEvent, type ProxyHarness } from './proxy-harness.ts';

interface Problem {
  status: number;
  code: string;
  detail: string;
  attempts?: CallEvent['payload']['attempts'];
  error: { message: string; type: string; code: string };
}

describe('fallbacks', () => {
  let h: ProxyHarness;
  beforeAll(async () => {
    // Breakers open only after many failures here, so each case starts from closed breakers.
    h = await startProxyHarness({ overrides: { resilience: { failure_threshold: 1000, recovery_timeout: 300 } } });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => h.setAll({ kind: 'answer' }));

  let seq = 0;
  const correlation = (): string => `fallback-${Date.now()}-${seq++}`;

  const failures: [string, FakeBehaviour | 'down', string, string][] = [
    ['a 500', { kind: 'error', status: 500 }, 'PROVIDER_SERVER_ERROR', 'server'],
    ['a 429 with Retry-After', { kind: 'rate_limited', retryAfter: '1' }, 'PROVIDER_RATE_LIMITED', 'rate_limited'],
    ['a timeout', { kind: 'slow', delayMs: 1500 }, 'PROVIDER_TIMEOUT', 'timeout'],
    ['a malformed answer', { kind: 'malformed' }, 'PROVIDER_BAD_RESPONSE', 'bad_response'],
    ['an answer without choices', { kind: 'missing_fields' }, 'PROVIDER_BAD_RESPONSE', 'bad_response'],
    ['a provider that is down', 'down', 'PROVIDER_UNREACHABLE', 'unreachable'],
    ["a refused key (401: Blocks' own credentials)", { kind: 'error', status: 401 }, 'PROVIDER_AUTH_FAILED', 'auth'],
    ['a forbidden key (403)', { kind: 'error', status: 403 }, 'PROVIDER_AUTH_FAILED', 'auth'],
  ];

  it.each(failures)('on %s the next ranked model serves, and only it is charged', async (_name, behaviour, code, kind) => {
    if (behaviour === 'down') await h.fakes['fake-a'].down();
    else h.fakes['fake-a'].setBehaviour(behaviour);
    try {
      const id = correlation();
      const res = await h.chat(chatBody('auto', 'fall back please'), { headers: { 'x-correlation-id': id } });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-blocks-model')).toBe('beta');
      expect(res.headers.get('x-blocks-attempts')).toBe('2');
      const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
      const events = await h.eventsFor(id);
      expect(events).toHaveLength(1);
      const payload = events[0]?.payload;
      expect(events[0]?.event_type).toBe('ai.request.completed');
      expect(payload?.attempts.map((a) => [a.model, a.outcome, a.kind])).toEqual([
        ['alpha', code, kind],
        ['beta', 'success', null],
      ]);
      expect(payload?.model).toBe('beta');
      expect(payload?.cost_usd).toBeCloseTo(costFor(body.usage.prompt_tokens, body.usage.completion_tokens), 12);
    } finally {
      if (behaviour === 'down') await h.fakes['fake-a'].up();
    }
  });

  it('tries another deployment of a concrete model before giving up, never the same one twice', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'error', status: 503 });
    const before = { a: h.fakes['fake-a'].requests.length, a2: h.fakes['fake-a2'].requests.length };
    const id = correlation();
    const res = await h.chat(chatBody('delta'), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(200);
    expect(h.fakes['fake-a2'].requests.length).toBe(before.a2 + 1);
    expect(h.fakes['fake-a'].requests.length - before.a).toBeLessThanOrEqual(1);
    const [event] = await h.eventsFor(id);
    expect(event?.payload.decision_id).toBeNull();
    expect(event?.payload.attempts.at(-1)).toMatchObject({ model: 'delta', deployment: 'two', outcome: 'success' });
  });

  it("answers a refused key with 502 and a generic detail, tries the next deployment, and logs the provider's words for the operator", async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'error', status: 401, message: 'Incorrect API key provided: sk-fake-a-1234' });
    h.fakes['fake-a2'].setBehaviour({ kind: 'error', status: 403, message: 'Key sk-fake-a2-5678 may not use this model' });
    const id = correlation();
    const res = await h.chat(chatBody('delta'), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(text).not.toMatch(/sk-fake|Incorrect API key|may not use/);
    const problem = JSON.parse(text) as Problem;
    expect(problem.code).toBe('PROVIDER_AUTH_FAILED');
    expect(problem.error).toMatchObject({ type: 'api_error', code: 'provider_auth_failed' });
    expect(problem.attempts?.map((a) => a.deployment).sort()).toEqual(['one', 'two']);
    const [event] = await h.eventsFor(id);
    expect(event?.payload).toMatchObject({ error_code: 'PROVIDER_AUTH_FAILED', status: 502, cost_usd: 0 });
    const bodies = event?.payload.attempts.map((a) => (a as { provider_body?: string }).provider_body ?? '').join(' ');
    expect(bodies).toMatch(/sk-fake-a-1234/);
    expect(bodies).toMatch(/sk-fake-a2-5678/);
    const logged = h.logs.lines.filter((line) => line['msg'] === "AI provider refused Blocks' credentials");
    expect(logged.map((line) => line['provider_body']).join(' ')).toMatch(/sk-fake-a-1234/);
    expect(
      logged
        .map((line) => [line['model'], line['deployment'], line['provider_status']])
        .slice(-2)
        .sort(),
    ).toEqual([
      ['delta', 'one', 401],
      ['delta', 'two', 403],
    ]);
  });

  it('does not retry a request the provider rejects (400) and answers a 400-class problem', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'error', status: 400, message: 'context too long' });
    const before = h.fakes['fake-b'].requests.length;
    const id = correlation();
    const res = await h.chat(chatBody('auto'), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(400);
    const problem = (await res.json()) as Problem;
    expect(problem.code).toBe('PROVIDER_REJECTED_REQUEST');
    expect(problem.detail).toContain('context too long');
    expect(problem.attempts).toHaveLength(1);
    expect(h.fakes['fake-b'].requests.length).toBe(before);
    const [event] = await h.eventsFor(id);
    expect(event?.event_type).toBe('ai.request.failed');
    expect(event?.payload).toMatchObject({ error_code: 'PROVIDER_REJECTED_REQUEST', status: 400, cost_usd: 0 });
  });

  it('when every attempt fails: the last error’s status, every attempt listed, nothing charged', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'error', status: 500 });
    h.fakes['fake-b'].setBehaviour({ kind: 'malformed' });
    h.fakes['fake-c'].setBehaviour({ kind: 'rate_limited', retryAfter: '7' });
    const id = correlation();
    const res = await h.chat(chatBody('auto'), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('retry-after')).toBe('7');
    const problem = (await res.json()) as Problem;
    expect(problem.code).toBe('PROVIDER_RATE_LIMITED');
    expect(problem.error.type).toBe('rate_limit_exceeded');
    expect(problem.attempts?.map((a) => [a.model, a.outcome])).toEqual([
      ['alpha', 'PROVIDER_SERVER_ERROR'],
      ['beta', 'PROVIDER_BAD_RESPONSE'],
      ['gamma', 'PROVIDER_RATE_LIMITED'],
    ]);
    const [event] = await h.eventsFor(id);
    expect(event?.payload).toMatchObject({ error_code: 'PROVIDER_RATE_LIMITED', status: 429, cost_usd: 0, prompt_tokens: 0 });
    expect(event?.payload.attempts).toHaveLength(3);
  });

  it('turns a malformed answer with nowhere to fall back into a clean 502 problem', async () => {
    h.setAll({ kind: 'malformed' });
    const res = await h.chat(chatBody('beta'));
    expect(res.status).toBe(502);
    const problem = (await res.json()) as Problem;
    expect(problem.code).toBe('PROVIDER_BAD_RESPONSE');
    expect(problem.detail).not.toMatch(/at .*\.ts:\d+/);
    expect((await h.chat(chatBody('alpha'))).status).toBe(502);
  });

  it('stays within max_attempts', async () => {
    h.setAll({ kind: 'error', status: 502 });
    const counts = () => Object.values(h.fakes).reduce((sum, fake) => sum + fake.requests.length, 0);
    const before = counts();
    const res = await h.chat(chatBody('auto'));
    expect(res.status).toBe(502);
    expect(((await res.json()) as Problem).attempts).toHaveLength(3);
    expect(counts() - before).toBe(3);
  });

  it('stops at the request deadline, bounding every attempt by what is left of it', async () => {
    h.setAll({ kind: 'slow', delayMs: 2500 });
    const started = Date.now();
    const res = await h.chat(chatBody('auto'));
    const took = Date.now() - started;
    expect(res.status).toBe(504);
    expect(((await res.json()) as Problem).code).toBe('PROVIDER_TIMEOUT');
    // attempt_timeout 1000 ms, request_timeout 3000 ms: three attempts of ~1 s, never more than the deadline.
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(3600);
  });

  it('falls back before the first chunk of a stream, and the client sees one clean stream', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'error', status: 500 });
    const id = correlation();
    const res = await h.chat(chatBody('auto', 'stream me', { stream: true }), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-blocks-model')).toBe('beta');
    expect(res.headers.get('x-blocks-attempts')).toBe('2');
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const text = data
      .slice(0, -1)
      .map((d) => (JSON.parse(d) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toBe('echo: stream me');
    const [event] = await h.eventsFor(id);
    expect(event?.payload.attempts.map((a) => a.outcome)).toEqual(['PROVIDER_SERVER_ERROR', 'success']);
  });

  it('a stream that fails before its first chunk everywhere is a problem document, not a stream', async () => {
    h.setAll({ kind: 'error', status: 503 });
    const res = await h.chat(chatBody('auto', 'x', { stream: true }));
    expect(res.status).toBe(502);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as Problem).code).toBe('PROVIDER_SERVER_ERROR');
  });

  it('ends a stream cut after its first chunk with an OpenAI error event and records the failure', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'truncated_stream' });
    const id = correlation();
    const res = await h.chat(chatBody('alpha', 'cut me', { stream: true }), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(200);
    const data = sseData(await res.text());
    expect(data).not.toContain('[DONE]');
    const last = JSON.parse(data.at(-1) ?? '{}') as { error?: { message: string; type: string; code: string } };
    expect(last.error).toMatchObject({ type: 'api_error', code: 'provider_bad_response' });
    const [event] = await h.eventsFor(id);
    expect(event?.event_type).toBe('ai.request.failed');
    expect(event?.payload).toMatchObject({ error_code: 'PROVIDER_BAD_RESPONSE', stream: true, model: 'alpha', deployment: 'default' });
    expect(event?.payload.attempts).toMatchObject([{ model: 'alpha', outcome: 'PROVIDER_BAD_RESPONSE', kind: 'bad_response' }]);
    // What reached the client before the cut ('echo:') is charged, with the prompt it answered.
    const {
      prompt_tokens: prompt,
      completion_tokens: completion,
      cost_usd: cost,
    } = event?.payload ?? { prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 };
    expect(prompt).toBeGreaterThan(0);
    expect(completion).toBeGreaterThan(0);
    expect(cost).toBeCloseTo(costFor(prompt, completion), 12);
  });

  it('aborts the upstream call when the client goes away mid-stream', async () => {
    h.fakes['fake-a'].setBehaviour({ kind: 'endless_stream' });
    const id = correlation();
    const abandoned = h.fakes['fake-a'].nextAbandoned();
    // node:http, not fetch: an aborted fetch leaves a fresh idle socket behind that holds the server open.
    const url = new URL(`${h.blocks.urls.autonomous as string}/v1/chat/completions`);
    const key = await h.credentials.headers();
    await new Promise<void>((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': id, ...key }, agent: false },
        (res) => {
          expect(res.statusCode).toBe(200);
          // Gone once some content arrived (the first chunk only names the role).
          let read = '';
          res.on('data', (part: Buffer) => {
            read += part.toString('utf8');
            if (!read.includes('"content":" 1"') || req.destroyed) return;
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end(JSON.stringify(chatBody('alpha', 'forever', { stream: true })));
    });
    await abandoned;
    const [event] = await h.eventsFor(id);
    expect(event?.event_type).toBe('ai.request.failed');
    expect(event?.payload).toMatchObject({ error_code: 'CLIENT_CLOSED_REQUEST', status: 499, provider: 'fake-a', deployment: 'default' });
    // Charged up to the cancel: the prompt and what was streamed, as the budget was.
    const {
      prompt_tokens: prompt,
      completion_tokens: completion,
      cost_usd: cost,
    } = event?.payload ?? { prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 };
    expect(prompt).toBeGreaterThan(0);
    expect(completion).toBeGreaterThan(0);
    expect(cost).toBeCloseTo(costFor(prompt, completion), 12);
  });
});
