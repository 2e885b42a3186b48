import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, startProxyHarness, type HarnessOptions, type ProxyHarness } from './proxy-harness.ts';

export interface CacheEnvironment {
  readonly options: HarnessOptions;
  /** Keys the shared store holds under the cache prefix (Redis), or null for the in-process cache. */
  readonly storedKeys: () => Promise<string[] | null>;
  cleanup(): Promise<void>;
}

/** The response cache, written once, run on the in-process cache and on L1 + Redis. */
export function responseCacheSuite(name: string, makeEnvironment: () => Promise<CacheEnvironment>): void {
  describe(`response cache (${name})`, () => {
    let env: CacheEnvironment;
    let h: ProxyHarness;
    beforeAll(async () => {
      env = await makeEnvironment();
      h = await startProxyHarness(env.options);
    });
    afterAll(async () => {
      await h?.close();
      await env?.cleanup();
    });

    let seq = 0;
    const unique = (label: string): string => `${label} ${Date.now()} ${seq++}`;
    const calls = () => h.fakes['fake-a'].requests.length;
    const ask = (body: unknown, headers: Record<string, string> = {}, key: { tenant?: string; scopes?: readonly string[] } = {}) =>
      h.chat(body, { headers, ...key });

    it('answers an identical request from the cache: hit header, no provider call, a free cached event', async () => {
      const text = unique('cache me');
      const first = await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' });
      expect(first.headers.get('x-blocks-cache')).toBe('miss');
      const answer = await first.json();
      const before = calls();
      const id = `cache-${Date.now()}-${seq++}`;
      const second = await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60', 'x-correlation-id': id });
      expect(second.status).toBe(200);
      expect(second.headers.get('x-blocks-cache')).toBe('hit');
      expect(second.headers.get('x-blocks-model')).toBe('alpha');
      expect(await second.json()).toEqual(answer);
      expect(calls()).toBe(before);
      const [event] = await h.eventsFor(id);
      expect(event?.event_type).toBe('ai.request.completed');
      expect(event?.payload).toMatchObject({ cached: true, cost_usd: 0, attempts: [], model: 'alpha', provider: 'fake-a' });
    });

    it('keys on the normalised request: member order, stream: false and user do not matter; content and model do', async () => {
      const text = unique('normalise');
      await ask({ ...chatBody('alpha', text), temperature: 0 }, { 'x-blocks-cache-ttl': '60' });
      const reordered = { temperature: 0, user: 'someone', stream: false, messages: chatBody('alpha', text).messages, model: 'alpha' };
      expect((await ask(reordered, { 'x-blocks-cache-ttl': '60' })).headers.get('x-blocks-cache')).toBe('hit');
      const other = await ask({ ...chatBody('alpha', `${text}!`), temperature: 0 }, { 'x-blocks-cache-ttl': '60' });
      expect(other.headers.get('x-blocks-cache')).toBe('miss');
      const auto = await ask({ ...chatBody('auto', text), temperature: 0 }, { 'x-blocks-cache-ttl': '60' });
      expect(auto.headers.get('x-blocks-cache')).toBe('miss');
    });

    it('never shares an answer across tenants', async () => {
      const text = unique('tenant');
      await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' }, { tenant: 'tenant-a' });
      const before = calls();
      const b = await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' }, { tenant: 'tenant-b' });
      expect(b.headers.get('x-blocks-cache')).toBe('miss');
      expect(calls()).toBe(before + 1);
      const again = await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' }, { tenant: 'tenant-a' });
      expect(again.headers.get('x-blocks-cache')).toBe('hit');
      // The cache is the tenant's, not the key's: another key of tenant-a gets the same answer.
      const otherKey = await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' }, { tenant: 'tenant-a', scopes: ['ai:invoke'] });
      expect(otherKey.headers.get('x-blocks-cache')).toBe('hit');
      expect(calls()).toBe(before + 1);
      const keys = await env.storedKeys();
      if (keys !== null) {
        expect(keys.some((k) => k.includes('ai:chat:tenant-a:'))).toBe(true);
        expect(keys.some((k) => k.includes('ai:chat:tenant-b:'))).toBe(true);
      }
    });

    it('caches only on request (header or blocks.cache_ttl), never a stream, and forgets after the TTL', async () => {
      const text = unique('opt in');
      const plain = await ask(chatBody('alpha', text));
      expect(plain.headers.get('x-blocks-cache')).toBeNull();
      expect((await ask(chatBody('alpha', text))).headers.get('x-blocks-cache')).toBeNull();

      const body = chatBody('alpha', text, { blocks: { cache_ttl: 1 } });
      expect((await ask(body)).headers.get('x-blocks-cache')).toBe('miss');
      expect((await ask(body)).headers.get('x-blocks-cache')).toBe('hit');
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect((await ask(body)).headers.get('x-blocks-cache')).toBe('miss');

      const streamed = await ask(chatBody('alpha', text, { stream: true }), { 'x-blocks-cache-ttl': '60' });
      await streamed.text();
      expect(streamed.headers.get('x-blocks-cache')).toBeNull();
    });

    it('does not cache a failure', async () => {
      const text = unique('failure');
      h.setAll({ kind: 'error', status: 500 });
      try {
        expect((await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' })).status).toBe(502);
      } finally {
        h.setAll({ kind: 'answer' });
      }
      expect((await ask(chatBody('alpha', text), { 'x-blocks-cache-ttl': '60' })).headers.get('x-blocks-cache')).toBe('miss');
    });
  });
}
