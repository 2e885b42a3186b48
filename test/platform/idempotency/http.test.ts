import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chatBody, sseData, startProxyHarness, type ProxyHarness } from '../../autonomous/ai-router/proxy/proxy-harness.ts';

/**
 * Idempotency-Key on a real Blocks (gateway and autonomous in one process, embedded database) and
 * the route that matters most: POST /v1/chat/completions, whose provider call costs money.
 */
describe('Idempotency-Key on POST /v1/chat/completions', () => {
  let h: ProxyHarness;
  beforeAll(async () => {
    h = await startProxyHarness();
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => h.setAll({ kind: 'answer' }));

  let n = 0;
  const freshKey = (): string => `idem-${Date.now()}-${++n}`;
  const providerCalls = (): number => h.fakes['fake-a'].requests.length;
  const completedEvents = async (): Promise<number> =>
    Number(
      (await h.blocks.platform.db.query<{ n: number }>("SELECT count(*) AS n FROM events WHERE event_type = 'ai.request.completed'"))
        .rows[0]?.n,
    );
  const keyed = (key: string, via: 'gateway' | 'autonomous' = 'autonomous') => ({ headers: { 'idempotency-key': key }, via });

  it('runs the first request with a key once and replays its answer, byte for byte, to a retry (one provider call, one call event)', async () => {
    const key = freshKey();
    const calls = providerCalls();
    const events = await completedEvents();
    const first = await h.chat(chatBody('alpha'), keyed(key));
    const firstText = await first.text();
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // Through the gateway too: the key is the caller's, whichever door the retry comes by.
    for (const via of ['autonomous', 'gateway'] as const) {
      const retry = await h.chat(chatBody('alpha'), keyed(key, via));
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(await retry.text()).toBe(firstText);
    }
    expect(providerCalls() - calls).toBe(1);
    expect((await completedEvents()) - events).toBe(1);
  });

  it('answers 409 IDEMPOTENCY_KEY_IN_USE with Retry-After to the same key while the first request runs: the provider is called once', async () => {
    h.setAll({ kind: 'slow', delayMs: 400 });
    const key = freshKey();
    const calls = providerCalls();
    const first = h.chat(chatBody('alpha'), keyed(key));
    // The first request holds the key once the provider has it.
    const deadline = Date.now() + 5000;
    while (providerCalls() === calls && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const second = await h.chat(chatBody('alpha'), keyed(key, 'gateway'));
    expect(second.status).toBe(409);
    expect(second.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(await second.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE', status: 409 });
    expect((await first).status).toBe(200);
    const after = await h.chat(chatBody('alpha'), keyed(key));
    expect(after.headers.get('idempotent-replayed')).toBe('true');
    expect(providerCalls() - calls).toBe(1);
  });

  it('lets one of many racing requests with one key reach the provider; the others get 409', async () => {
    h.setAll({ kind: 'slow', delayMs: 300 });
    const key = freshKey();
    const calls = providerCalls();
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => h.chat(chatBody('alpha'), keyed(key, i % 2 ? 'gateway' : 'autonomous'))),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    expect(providerCalls() - calls).toBe(1);
  });

  it('answers 422 IDEMPOTENCY_KEY_REUSED to the key sent with another body, and does not call the provider', async () => {
    const key = freshKey();
    await h.chat(chatBody('alpha', 'first question'), keyed(key));
    const calls = providerCalls();
    const other = await h.chat(chatBody('alpha', 'another question'), keyed(key));
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(providerCalls()).toBe(calls);
  });

  it("keeps callers' keys apart: another tenant's request with the same key runs and gets its own answer", async () => {
    const key = freshKey();
    const calls = providerCalls();
    const mine = await h.chat(chatBody('alpha'), keyed(key));
    const theirs = await h.chat(chatBody('alpha'), { ...keyed(key), tenant: 'other-tenant' });
    expect([mine.status, theirs.status]).toEqual([200, 200]);
    expect(theirs.headers.get('idempotent-replayed')).toBeNull();
    expect(providerCalls() - calls).toBe(2);
  });

  it('does not store a 5xx answer: the retry with the same key runs again', async () => {
    h.setAll({ kind: 'error', status: 500 });
    const key = freshKey();
    const failed = await h.chat(chatBody('alpha'), keyed(key));
    expect(failed.status).toBeGreaterThanOrEqual(500);
    h.setAll({ kind: 'answer' });
    const retry = await h.chat(chatBody('alpha'), keyed(key));
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses a malformed key with 400 IDEMPOTENCY_KEY_INVALID before anything runs', async () => {
    const calls = providerCalls();
    const answer = await h.chat(chatBody('alpha'), keyed('x'.repeat(256)));
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_INVALID' });
    expect(providerCalls()).toBe(calls);
  });

  it('does not replay a stream: 409 while it runs, and the key is free once it ended', async () => {
    h.setAll({ kind: 'slow_stream', delayMs: 50 });
    const key = freshKey();
    const body = chatBody('alpha', 'stream it', { stream: true });
    const first = await h.chat(body, keyed(key));
    expect(first.status).toBe(200);
    const during = await h.chat(body, keyed(key));
    expect(during.status).toBe(409);
    expect(sseData(await first.text()).length).toBeGreaterThan(0);
    h.setAll({ kind: 'answer' });
    const calls = providerCalls();
    // onResponse frees the key just after the last byte: give it a moment.
    let again = await h.chat(body, keyed(key));
    for (let i = 0; again.status === 409 && i < 20; i++) {
      await again.text();
      await new Promise((r) => setTimeout(r, 25));
      again = await h.chat(body, keyed(key));
    }
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    await again.text();
    expect(providerCalls() - calls).toBe(1);
  });

  it('keeps an answer holding a secret (Cache-Control: no-store, a created API key) without its body: a retry gets 410 IDEMPOTENT_ANSWER_NOT_KEPT, and only one key is made', async () => {
    const key = freshKey();
    const create = async () =>
      fetch(`${h.blocks.urls.gateway as string}/api/v1/identity/api-keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key, ...(await h.credentials.headers()) },
        body: JSON.stringify({ name: `idem ${key}`, scopes: [] }),
      });
    const first = await create();
    expect(first.status).toBe(201);
    const made = (await first.json()) as { key: string };
    const retry = await create();
    expect(retry.status).toBe(410);
    expect(await retry.json()).toMatchObject({ code: 'IDEMPOTENT_ANSWER_NOT_KEPT', original_status: 201 });
    const rows = (
      await h.blocks.platform.db.query<{ body: Uint8Array; headers: Record<string, string> }>(
        'SELECT body, headers FROM idempotency_keys WHERE key = $1',
        [key],
      )
    ).rows;
    expect(rows).toHaveLength(1);
    expect(Buffer.from(rows[0]?.body ?? []).toString()).not.toContain(made.key);
    expect(rows[0]?.body.length).toBe(0);
    const keys = await h.blocks.platform.db.query('SELECT 1 FROM api_keys WHERE name = $1', [`idem ${key}`]);
    expect(keys.rowCount).toBe(1);
  });
});
