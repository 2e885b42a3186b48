import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../../support/blocks.ts';
import { FAKE_B_KEY, WEATHER_TOOL, chatBody, costFor, sseData, startProxyHarness, type ProxyHarness } from './proxy-harness.ts';

interface Completion {
  id: string;
  object: string;
  model: string;
  choices: {
    index: number;
    message: {
      role: string;
      content: string | null;
      tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
    };
    finish_reason: string;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface Chunk {
  object: string;
  model: string;
  choices: {
    index: number;
    delta: {
      role?: string;
      content?: string | null;
      tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
}
interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: { pointer: string; message: string }[];
  error: { message: string; type: string; code: string; param: string | null };
}

describe('/v1/chat/completions and /v1/models (OpenAI wire format)', () => {
  let h: ProxyHarness;
  beforeAll(async () => {
    h = await startProxyHarness({
      aiOverrides: {
        policies: { 'eu-only': { models: ['beta', 'gamma'], task_type: 'chat' } },
        tenants: { 'eu-tenant': { allowed_regions: ['eu'] } },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => h.setAll({ kind: 'answer' }));

  const correlation = (name: string): string => `chat-${name}-${Date.now()}-${Math.random().toString(16).slice(2)}`;

  it('answers a concrete OpenAI-compatible model, charges its usage and records one completed event', async () => {
    const id = correlation('openai');
    const res = await h.chat(chatBody('alpha', 'héllo wörld', { temperature: 0.2, blocks: { task_type: 'code' } }), {
      tenant: 'acme',
      // Optional, and accepted when it names the key's own tenant.
      headers: { 'x-correlation-id': id, 'x-blocks-tenant': 'acme' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-blocks-model')).toBe('alpha');
    expect(res.headers.get('x-blocks-provider')).toBe('fake-a');
    expect(res.headers.get('x-blocks-attempts')).toBe('1');
    expect(res.headers.get('x-blocks-decision-id')).toBeNull();
    const body = (await res.json()) as Completion;
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('alpha');
    expect(body.choices[0]?.message).toEqual({ role: 'assistant', content: 'echo: héllo wörld' });
    const sent = h.fakes['fake-a'].requests.at(-1)?.body as Record<string, unknown>;
    expect(sent['model']).toBe('alpha');
    expect(sent['temperature']).toBe(0.2);
    expect(sent).not.toHaveProperty('blocks');

    const [event] = await h.eventsFor(id);
    expect(event?.event_type).toBe('ai.request.completed');
    expect(event?.payload).toMatchObject({
      decision_id: null,
      tenant: 'acme',
      model: 'alpha',
      provider: 'fake-a',
      deployment: 'default',
      task_type: 'code',
      stream: false,
      cached: false,
      prompt_tokens: body.usage.prompt_tokens,
      completion_tokens: body.usage.completion_tokens,
      attempts: [{ model: 'alpha', provider: 'fake-a', deployment: 'default', outcome: 'success', kind: null }],
    });
    // The identity key the call was made with, by its id: what per-key budgets and usage go by.
    expect(event?.payload.api_key_id).toBe(await h.credentials.keyId('acme'));
    expect(event?.payload.cost_usd).toBeCloseTo(costFor(body.usage.prompt_tokens, body.usage.completion_tokens), 12);
  });

  it('counts calls, cost and tokens per model on /metrics, and a request rate', async () => {
    const metric = async (name: string, labels: string): Promise<number> => {
      const text = await (await fetch(`${h.blocks.urls.autonomous as string}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label)));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const before = {
      calls: await metric('blocks_ai_requests_total', 'model="alpha",provider="fake-a",outcome="success"'),
      cost: await metric('blocks_ai_cost_usd_total', 'model="alpha"'),
      completion: await metric('blocks_ai_tokens_total', 'model="alpha",kind="completion"'),
    };
    const usage = { prompt: 0, completion: 0 };
    for (let i = 0; i < 3; i++) {
      const res = await h.chat(chatBody('alpha', `count me ${i}`));
      const body = (await res.json()) as Completion;
      usage.prompt += body.usage.prompt_tokens;
      usage.completion += body.usage.completion_tokens;
    }
    expect(await metric('blocks_ai_requests_total', 'model="alpha",provider="fake-a",outcome="success"')).toBe(before.calls + 3);
    expect(await metric('blocks_ai_tokens_total', 'model="alpha",kind="completion"')).toBe(before.completion + usage.completion);
    expect(await metric('blocks_ai_cost_usd_total', 'model="alpha"')).toBeCloseTo(before.cost + costFor(usage.prompt, usage.completion), 9);
    // The rate covers whole seconds before the current one: it shows the calls once their second is over.
    const rate = await eventually(
      async () => {
        const text = await (await fetch(`${h.blocks.urls.autonomous as string}/metrics`)).text();
        return Number(/^blocks_ai_requests_per_second(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1]);
      },
      // Three calls in the 10-second window (with earlier tests' calls, more): at least 0.3 per second once every second has passed.
      (value) => value >= 0.3,
      3_000,
    );
    expect(rate).toBeGreaterThanOrEqual(0.3);
  });

  it('carries a tool call through the Anthropic adapter in OpenAI shape, with the provider headers and max_tokens', async () => {
    h.fakes['fake-c'].setBehaviour({ kind: 'tool_call', arguments: { city: 'Oslo' } });
    const res = await h.chat(chatBody('gamma', 'weather?', { tools: [WEATHER_TOOL], tool_choice: 'auto', max_tokens: 50 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-blocks-provider')).toBe('fake-c');
    const body = (await res.json()) as Completion;
    expect(body.model).toBe('gamma');
    expect(body.choices[0]?.finish_reason).toBe('tool_calls');
    expect(body.choices[0]?.message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(body.choices[0]?.message.tool_calls?.[0]?.function.arguments ?? '')).toEqual({ city: 'Oslo' });
    const recorded = h.fakes['fake-c'].requests.at(-1);
    expect(recorded?.path).toBe('/v1/messages');
    expect(recorded?.headers['anthropic-beta']).toBe('test');
    expect((recorded?.body as { max_tokens: number }).max_tokens).toBe(50);
  });

  it('sends the key named by credentials_ref, and a deployment its upstream model name', async () => {
    expect((await h.chat(chatBody('beta'))).status).toBe(200);
    expect(h.fakes['fake-b'].requests.at(-1)?.headers.authorization).toBe(`Bearer ${FAKE_B_KEY}`);
    expect(h.fakes['fake-a'].requests.at(-1)?.headers.authorization).toBeUndefined();
    // The caller's own Blocks key never travels on to a provider.
    expect(h.fakes['fake-a'].requests.at(-1)?.headers['x-api-key']).toBeUndefined();
    const upstreams = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await h.chat(chatBody('delta'));
      expect(res.status).toBe(200);
      expect(((await res.json()) as Completion).model).toBe('delta');
    }
    for (const fake of [h.fakes['fake-a'], h.fakes['fake-a2']]) {
      for (const r of fake.requests) upstreams.add((r.body as { model: string }).model);
    }
    expect(upstreams).toContain('delta');
    expect(upstreams).toContain('delta-upstream');
  });

  it.each(['alpha', 'gamma'] as const)('streams %s in OpenAI chunk shape with tool calls, then [DONE]', async (model) => {
    const fake = model === 'alpha' ? h.fakes['fake-a'] : h.fakes['fake-c'];
    fake.setBehaviour({ kind: 'tool_call', arguments: { city: 'Rome' } });
    const id = correlation(`stream-${model}`);
    const res = await h.chat(chatBody(model, 'weather in Rome', { stream: true, tools: [WEATHER_TOOL] }), {
      headers: { 'x-correlation-id': id },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-blocks-model')).toBe(model);
    const data = sseData(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === model && c.choices.length === 1)).toBe(true);
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, function: { name: 'get_weather' } });
    expect(JSON.parse(calls.map((c) => c.function?.arguments ?? '').join(''))).toEqual({ city: 'Rome' });
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
    const [event] = await h.eventsFor(id);
    expect(event?.payload).toMatchObject({ model, stream: true, cached: false });
    expect(event?.payload.completion_tokens).toBeGreaterThan(0);
  });

  it('streams text whole and ends with the usage chunk only when the client asks for it', async () => {
    const plain = sseData(await (await h.chat(chatBody('alpha', 'one two three', { stream: true }))).text());
    const chunks = plain.slice(0, -1).map((d) => JSON.parse(d) as Chunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('echo: one two three');
    expect(chunks.some((c) => c.usage)).toBe(false);
    const withUsage = sseData(
      await (await h.chat(chatBody('gamma', 'one two three', { stream: true, stream_options: { include_usage: true } }))).text(),
    );
    const last = JSON.parse(withUsage.at(-2) ?? '{}') as Chunk;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 13, completion_tokens: 4 });
  });

  it('routes `auto` through the decider: best model, decision id in header and event, defaults from config', async () => {
    const id = correlation('auto');
    const res = await h.chat(chatBody('auto'), { headers: { 'x-correlation-id': id } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-blocks-model')).toBe('alpha');
    const decisionId = res.headers.get('x-blocks-decision-id');
    expect(decisionId).toMatch(/^[0-9a-f-]{36}$/);
    const [event] = await h.eventsFor(id);
    expect(event?.payload).toMatchObject({ decision_id: decisionId, model: 'alpha', task_type: 'chat', complexity: 'medium' });
    expect(event?.payload.confidence).toBeGreaterThan(0.9);
  });

  it('routes a policy name within its models, and `auto` honours the tenant’s regions', async () => {
    const res = await h.chat(chatBody('eu-only'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-blocks-model')).toBe('beta');
    const tenant = await h.chat(chatBody('auto'), { tenant: 'eu-tenant' });
    expect(tenant.status).toBe(200);
    expect(tenant.headers.get('x-blocks-model')).not.toBe('alpha');
    const refused = await h.chat(chatBody('alpha'), { tenant: 'eu-tenant' });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as Problem).code).toBe('MODEL_NOT_ALLOWED');
  });

  it('lists auto, the routing policies and the enabled catalog models', async () => {
    const res = await fetch(`${h.blocks.urls.autonomous as string}/v1/models`, { headers: await h.credentials.headers() });
    expect(res.status).toBe(200);
    const list = (await res.json()) as { object: string; data: { id: string; object: string; owned_by: string }[] };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(['auto', 'eu-only', 'alpha', 'beta', 'delta', 'gamma']);
    expect(list.data.find((m) => m.id === 'gamma')).toMatchObject({ object: 'model', owned_by: 'fake-c' });
  });

  it('answers through the gateway port too', async () => {
    const res = await h.chat(chatBody('auto', 'via gateway'), { via: 'gateway' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Completion).choices[0]?.message.content).toBe('echo: via gateway');
    const stream = await h.chat(chatBody('gamma', 'via gateway', { stream: true }), { via: 'gateway' });
    expect(sseData(await stream.text()).at(-1)).toBe('[DONE]');
  });

  describe('lets only a credential holding ai:invoke call a model, before calling anyone', () => {
    const providerCalls = (): number => Object.values(h.fakes).reduce((sum, fake) => sum + fake.requests.length, 0);
    const callEvents = async (id: string): Promise<number> =>
      (await h.blocks.platform.db.query('SELECT 1 FROM events WHERE correlation_id = $1 AND event_type LIKE $2', [id, 'ai.request.%'])).rows
        .length;

    it.each(['autonomous', 'gateway'] as const)('no credential: 401 AUTHENTICATION_REQUIRED (%s)', async (via) => {
      const before = providerCalls();
      const id = correlation('anonymous');
      const res = await h.chat(chatBody('alpha'), { anonymous: true, via, headers: { 'x-correlation-id': id } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(((await res.json()) as Problem).code).toBe('AUTHENTICATION_REQUIRED');
      expect(providerCalls()).toBe(before);
      expect(await callEvents(id)).toBe(0);
    });

    it.each(['autonomous', 'gateway'] as const)('a key without ai:invoke: 403 INSUFFICIENT_SCOPE naming it (%s)', async (via) => {
      const before = providerCalls();
      const id = correlation('scope');
      const res = await h.chat(chatBody('alpha'), {
        scopes: ['ai:read', 'ai:budgets', 'ai:route'],
        via,
        headers: { 'x-correlation-id': id },
      });
      expect(res.status).toBe(403);
      const problem = (await res.json()) as Problem & { scope?: string };
      expect(problem.code).toBe('INSUFFICIENT_SCOPE');
      expect(problem.scope).toBe('ai:invoke');
      // In OpenAI's error shape too, so SDK clients raise their permission error.
      expect(problem.error).toMatchObject({ type: 'permission_error', code: 'insufficient_scope' });
      expect(res.headers.get('www-authenticate')).toContain('scope="ai:invoke"');
      const models = await fetch(`${h.blocks.urls[via] as string}/v1/models`, {
        headers: await h.credentials.headers('default', ['ai:read']),
      });
      expect(models.status).toBe(403);
      expect(providerCalls()).toBe(before);
      expect(await callEvents(id)).toBe(0);
    });

    it('a key holding ai:invoke alone is enough', async () => {
      const res = await h.chat(chatBody('alpha', 'least privilege'), { tenant: 'invoker', scopes: ['ai:invoke'] });
      expect(res.status).toBe(200);
      expect(((await res.json()) as Completion).choices[0]?.message.content).toBe('echo: least privilege');
    });

    it("x-blocks-tenant naming another tenant than the key's: 403 TENANT_MISMATCH", async () => {
      const before = providerCalls();
      const res = await h.chat(chatBody('alpha'), { tenant: 'acme', headers: { 'x-blocks-tenant': 'eu-tenant' } });
      expect(res.status).toBe(403);
      expect(((await res.json()) as Problem).code).toBe('TENANT_MISMATCH');
      expect(providerCalls()).toBe(before);
    });

    it('an unknown key: 401 INVALID_CREDENTIALS', async () => {
      const res = await h.chat(chatBody('alpha'), { headers: { 'x-api-key': 'bk_not_a_key_of_this_blocks' } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as Problem).code).toBe('INVALID_CREDENTIALS');
    });
  });

  describe('refuses bad requests with a 400 problem naming the member, before calling anyone', () => {
    const cases: [string, unknown, string][] = [
      ['an unknown top-level member', { ...chatBody('alpha'), temprature: 1 }, '/temprature'],
      ['no messages', { model: 'alpha', messages: [] }, '/messages'],
      ['an unknown role', { model: 'alpha', messages: [{ role: 'robot', content: 'x' }] }, '/messages/0/role'],
      [
        'a member a role does not have',
        { model: 'alpha', messages: [{ role: 'user', content: 'x', tool_calls: [] }] },
        '/messages/0/tool_calls',
      ],
      ['a tool result without tool_call_id', { model: 'alpha', messages: [{ role: 'tool', content: 'x' }] }, '/messages/0/tool_call_id'],
      [
        'a content part of an unknown type',
        { model: 'alpha', messages: [{ role: 'user', content: [{ type: 'audio' }] }] },
        '/messages/0/content/0/type',
      ],
      [
        'an image in a system message',
        { model: 'alpha', messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
        '/messages/0/content/0/type',
      ],
      ['a temperature out of range', { ...chatBody('alpha'), temperature: 3 }, '/temperature'],
      ['more than one choice', { ...chatBody('alpha'), n: 2 }, '/n'],
      ['an unknown Blocks hint', { ...chatBody('alpha'), blocks: { priority: 1 } }, '/blocks/priority'],
      ['a tool of another type', { ...chatBody('alpha'), tools: [{ type: 'retrieval' }] }, '/tools/0'],
    ];
    it.each(cases)('%s', async (_name, body, pointer) => {
      const before = h.fakes['fake-a'].requests.length;
      const res = await h.chat(body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as Problem;
      expect(problem.code).toBe('VALIDATION_FAILED');
      expect(problem.errors?.map((e) => e.pointer).some((p) => p.startsWith(pointer))).toBe(true);
      expect(problem.error).toMatchObject({ type: 'invalid_request_error', code: 'validation_failed' });
      expect(problem.error.message).toBe(problem.detail);
      expect(h.fakes['fake-a'].requests.length).toBe(before);
    });

    it('an unknown model: 404 naming the model and how to list them', async () => {
      const res = await h.chat(chatBody('gpt-17'));
      expect(res.status).toBe(404);
      const problem = (await res.json()) as Problem;
      expect(problem.code).toBe('UNKNOWN_MODEL');
      expect(problem.detail).toContain('gpt-17');
      expect(problem.error).toMatchObject({ type: 'not_found_error', code: 'unknown_model', param: 'model' });
    });

    it('a body that is not JSON', async () => {
      const res = await h.chat('{"model": "alpha", ');
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });

    it('a cache TTL header that is not a number', async () => {
      const res = await h.chat(chatBody('alpha'), { headers: { 'x-blocks-cache-ttl': 'forever' } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as Problem).code).toBe('INVALID_CACHE_TTL');
    });
  });

  it('accepts an image part (vision) and a developer message, sent on as system', async () => {
    const res = await h.chat({
      model: 'alpha',
      messages: [
        { role: 'developer', content: 'Describe.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA', detail: 'low' } },
          ],
        },
      ],
    });
    expect(res.status).toBe(200);
    const sent = h.fakes['fake-a'].requests.at(-1)?.body as { messages: { role: string }[] };
    expect(sent.messages[0]?.role).toBe('system');
  });
});
