import { describe, expect, it, vi } from 'vitest';
import { CacheUnavailableError } from '../../../src/platform/cache/errors.ts';
import { probeService } from '../../support/services.ts';
import { natsBusFixture, redisBusFixture } from '../../conformance/bus.fixtures.ts';
import { brokerBusWorld, memoryBusWorld, useRedisCacheHarness, type BusWorld } from './redis-harness.ts';

const redis = await probeService('redis');
const nats = await probeService('nats');

/** Invalidations must reach every replica whichever bus carries them. */
const worlds: { name: string; ok: boolean; make: () => Promise<BusWorld> }[] = [
  { name: 'the in-process bus', ok: redis.ok, make: memoryBusWorld },
  {
    name: 'NATS JetStream',
    ok: redis.ok && nats.ok,
    make: () => brokerBusWorld(() => natsBusFixture(nats.url)),
  },
  {
    name: 'Redis Streams',
    ok: redis.ok,
    make: () => brokerBusWorld(() => redisBusFixture(redis.url)),
  },
];

for (const world of worlds) {
  describe.skipIf(!world.ok)(`redis cache replicas invalidating over ${world.name}`, () => {
    const h = useRedisCacheHarness(redis.url, world.make);

    it('serves a replica from its L1 until another replica sets the key, then reads the new value', async () => {
      const prefix = h.newPrefix();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix);
      await a.set('k', { v: 1 });
      await h.drained(b); // so this invalidation cannot land after B has cached the value
      expect(await b.get('k')).toEqual({ v: 1 });

      // Behind the caches' back: B keeps answering from its L1.
      await h.raw().set(`${prefix}k`, JSON.stringify({ v: 'behind' }));
      expect(await b.get('k')).toEqual({ v: 1 });

      await a.set('k', { v: 2 });
      await h.drained(b);
      expect(await b.get('k')).toEqual({ v: 2 });
      expect(await a.get('k')).toEqual({ v: 2 });
    });

    it('drops a deleted key from every replica', async () => {
      const prefix = h.newPrefix();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix);
      await b.set('k', 'cached');
      expect(await b.get('k')).toBe('cached');
      await a.delete('k');
      await h.drained(b);
      expect(await b.get('k')).toBeUndefined();
      expect(await h.raw().exists(`${prefix}k`)).toBe(0);
    });

    it('ignores its own invalidations and those of caches under another prefix', async () => {
      const prefix = h.newPrefix();
      const other = h.newPrefix();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix);
      const c = await h.replica(other);
      await a.set('k', 'from-a');
      await c.set('k', 'from-c');
      await h.drained(a);
      await h.drained(b);
      await h.drained(c);
      await h.raw().set(`${prefix}k`, JSON.stringify('behind-a'));
      await h.raw().set(`${other}k`, JSON.stringify('behind-c'));

      await b.set('k', 'from-b');
      await h.drained(a);
      await h.drained(c);
      // A dropped its L1 copy on B's invalidation; C (other prefix) did not.
      expect(await a.get('k')).toBe('from-b');
      expect(await c.get('k')).toBe('from-c');
      // B's own invalidation left B's L1 alone: it still answers without reading Redis.
      await h.raw().set(`${prefix}k`, JSON.stringify('behind-b'));
      await h.drained(b);
      expect(await b.get('k')).toBe('from-b');
    });

    it('leaves no consumer behind on the bus once a replica closes, so nothing collects its invalidations', async () => {
      const prefix = h.newPrefix();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix);
      await b.set('k1', 'one');
      await h.drained(a);
      await a.close();
      await b.set('k2', 'two');
      await b.delete('k1');
      // A durable consumer would now hold both invalidations for a replica that is gone for good.
      expect(await h.lagOf(a)).toBe(0);
    });

    it('converges every replica on one value after concurrent writes from two replicas', async () => {
      const prefix = h.newPrefix();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix);
      for (let round = 0; round < 10; round += 1) {
        await Promise.all([a.get('k'), b.get('k')]);
        await Promise.all([a.set('k', `a${round}`), b.set('k', `b${round}`), a.get('k'), b.get('k')]);
        await h.drained(a);
        await h.drained(b);
        const stored = JSON.parse((await h.raw().get(`${prefix}k`)) ?? 'null') as string;
        expect([`a${round}`, `b${round}`]).toContain(stored);
        expect(await a.get('k')).toBe(stored);
        expect(await b.get('k')).toBe(stored);
      }
    });

    it('does not keep a value in L1 that was read while an invalidation of that key arrived', async () => {
      const prefix = h.newPrefix();
      const proxy = await h.proxy();
      const a = await h.replica(prefix);
      const b = await h.replica(prefix, {
        url: proxy.url,
        commandTimeoutMs: 5000,
      });
      await a.set('k', 'old');
      await h.drained(b);
      await b.get('missing'); // B's connection is up

      proxy.hold();
      const inFlight = b.get('k');
      // Redis has answered B's read with 'old'; the reply waits in the proxy.
      await vi.waitFor(() => expect(proxy.heldText()).toContain('"old"'), {
        timeout: 5000,
        interval: 5,
      });
      await a.set('k', 'new');
      await h.drained(b);
      proxy.release();

      expect(await inFlight).toBe('old'); // it raced the write; what matters is what B keeps
      expect(await b.get('k')).toBe('new');
    });

    it('still invalidates other replicas when a write times out but lands in Redis', async () => {
      const prefix = h.newPrefix();
      const proxy = await h.proxy();
      const a = await h.replica(prefix, { url: proxy.url });
      const b = await h.replica(prefix);
      await b.set('k', 'old');
      expect(await b.get('k')).toBe('old');

      proxy.hold(); // A's SET reaches Redis; its reply never comes back
      await expect(a.set('k', 'new')).rejects.toBeInstanceOf(CacheUnavailableError);
      expect(JSON.parse((await h.raw().get(`${prefix}k`)) ?? 'null')).toBe('new');
      await h.drained(b);
      expect(await b.get('k')).toBe('new');
    });
  });
}
