import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RateLimiter, RateLimitPolicy } from '../../src/platform/rate-limit/port.ts';

/** A limiter; `pair` gives two that share state (two replicas), when the adapter can. */
export interface RateLimitFixture {
  readonly make: () => RateLimiter | Promise<RateLimiter>;
  readonly pair?: () => Promise<readonly [RateLimiter, RateLimiter]>;
}

let keyCounter = 0;
const freshKey = (): string => `k${process.pid}-${Date.now()}-${keyCounter++}`;

/** Runs the rate-limiter port's contract against one adapter. Timing bounds are wide: the machine is small and shared. */
export function rateLimitSuite(name: string, fixture: RateLimitFixture): void {
  describe(`rate limiter conformance: ${name}`, () => {
    const open: RateLimiter[] = [];
    const make = async (): Promise<RateLimiter> => {
      const limiter = await fixture.make();
      open.push(limiter);
      return limiter;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((l) => l.close()));
    });

    it('admits a full burst, then refuses with the wait until the next request fits', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 5, periodMs: 60_000 };
      const remaining: number[] = [];
      for (let i = 0; i < 5; i++) {
        const d = await limiter.take(key, policy);
        expect(d.allowed).toBe(true);
        remaining.push(d.remaining);
      }
      expect(remaining).toEqual([4, 3, 2, 1, 0]);
      const refused = await limiter.take(key, policy);
      expect(refused).toMatchObject({ allowed: false, remaining: 0 });
      // One request per 12 s at the sustained rate.
      expect(refused.retryAfterMs).toBeGreaterThan(11_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(12_000);
      expect(refused.resetMs).toBeGreaterThan(59_000);
    });

    it('admits the next request once its interval has passed, and only one', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 10, periodMs: 1_000, burst: 2 };
      expect((await limiter.take(key, policy)).allowed).toBe(true);
      expect((await limiter.take(key, policy)).allowed).toBe(true);
      const refused = await limiter.take(key, policy);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
      await sleep(refused.retryAfterMs + 15);
      expect((await limiter.take(key, policy)).allowed).toBe(true);
      expect((await limiter.take(key, policy)).allowed).toBe(false);
    });

    it('has no window edge: a burst spent at the end of one period is not refilled at the start of the next', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 4, periodMs: 400 };
      let admitted = 0;
      // Hammer for just over one period: a fixed window would admit up to 2 × limit across its edge.
      const until = Date.now() + 450;
      while (Date.now() < until) {
        if ((await limiter.take(key, policy)).allowed) admitted++;
        await sleep(5);
      }
      // burst (4) + what the sustained rate refills in ~450 ms (4 or 5), never 8 at an instant plus more.
      expect(admitted).toBeGreaterThanOrEqual(7);
      expect(admitted).toBeLessThanOrEqual(9);
    });

    it('is exact under concurrent requests: 50 at once against a limit of 10 admit exactly 10', async () => {
      const limiter = await make();
      const key = freshKey();
      const decisions = await Promise.all(Array.from({ length: 50 }, () => limiter.take(key, { limit: 10, periodMs: 60_000 })));
      expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    });

    it('charges a cost of several requests all or nothing', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 10, periodMs: 60_000 };
      expect(await limiter.take(key, policy, 7)).toMatchObject({ allowed: true, remaining: 3 });
      expect(await limiter.take(key, policy, 4)).toMatchObject({ allowed: false, remaining: 3 });
      expect(await limiter.take(key, policy, 3)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('keeps keys apart', async () => {
      const limiter = await make();
      const [a, b] = [freshKey(), freshKey()];
      const policy: RateLimitPolicy = { limit: 1, periodMs: 60_000 };
      expect((await limiter.take(a, policy)).allowed).toBe(true);
      expect((await limiter.take(a, policy)).allowed).toBe(false);
      expect((await limiter.take(b, policy)).allowed).toBe(true);
    });

    it('refuses policies and costs that cannot admit anything', async () => {
      const limiter = await make();
      await expect(limiter.take(freshKey(), { limit: 0, periodMs: 1000 })).rejects.toThrow(RangeError);
      await expect(limiter.take(freshKey(), { limit: 1, periodMs: Number.NaN })).rejects.toThrow(RangeError);
      await expect(limiter.take(freshKey(), { limit: 1, periodMs: 1000, burst: -1 })).rejects.toThrow(RangeError);
      await expect(limiter.take(freshKey(), { limit: 1, periodMs: 1000 }, 0)).rejects.toThrow(RangeError);
      await expect(limiter.take(freshKey(), { limit: 1, periodMs: 1000 }, 1.5)).rejects.toThrow(RangeError);
    });

    it('gives back what a take took: after a spent burst, one refund admits exactly one more', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 5, periodMs: 60_000 };
      for (let i = 0; i < 5; i++) expect((await limiter.take(key, policy)).allowed).toBe(true);
      expect((await limiter.take(key, policy)).allowed).toBe(false);
      await limiter.refund(key, policy);
      expect(await limiter.take(key, policy)).toMatchObject({ allowed: true, remaining: 0 });
      expect((await limiter.take(key, policy)).allowed).toBe(false);
      await limiter.refund(key, policy, 3);
      expect(await limiter.take(key, policy, 3)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('never gives back more than a whole burst, and a refund of a key with nothing taken changes nothing', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 4, periodMs: 60_000 };
      await limiter.refund(key, policy, 3);
      await limiter.take(key, policy);
      await limiter.refund(key, policy, 5);
      const decisions: boolean[] = [];
      for (let i = 0; i < 6; i++) decisions.push((await limiter.take(key, policy)).allowed);
      expect(decisions).toEqual([true, true, true, true, false, false]);
    });

    it('holds at most the burst in reservations at once, and is whole again once all are given back', async () => {
      const limiter = await make();
      const key = freshKey();
      const policy: RateLimitPolicy = { limit: 10, periodMs: 60_000 };
      // 50 attempts start together, each reserving before it is tried; only then do the tried ones end.
      const reservations = await Promise.all(Array.from({ length: 50 }, () => limiter.take(key, policy)));
      const held = reservations.filter((d) => d.allowed);
      expect(held).toHaveLength(10);
      await Promise.all(held.map(() => limiter.refund(key, policy)));
      const after = await Promise.all(Array.from({ length: 12 }, () => limiter.take(key, policy)));
      expect(after.filter((d) => d.allowed)).toHaveLength(10);
    });

    it('refuses refund costs that are not a positive integer', async () => {
      const limiter = await make();
      await expect(limiter.refund(freshKey(), { limit: 1, periodMs: 1000 }, 0)).rejects.toThrow(RangeError);
      await expect(limiter.refund(freshKey(), { limit: 1, periodMs: 1000 }, 1.5)).rejects.toThrow(RangeError);
      await expect(limiter.refund(freshKey(), { limit: 0, periodMs: 1000 })).rejects.toThrow(RangeError);
    });

    // Only adapters that share state across replicas have these cases (the in-process one is one replica by design).
    const pair = fixture.pair;
    if (pair) {
      it('shares one allowance between replicas, exactly, under concurrency', async () => {
        const [first, second] = await pair();
        open.push(first, second);
        const key = freshKey();
        const policy: RateLimitPolicy = { limit: 25, periodMs: 60_000 };
        const decisions = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? first : second).take(key, policy)));
        expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
      });

      it('lets one replica give back what the other took, under concurrent reservations', async () => {
        const [first, second] = await pair();
        open.push(first, second);
        const key = freshKey();
        const policy: RateLimitPolicy = { limit: 20, periodMs: 60_000 };
        const reserved = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? first : second).take(key, policy)));
        expect(reserved.filter((d) => d.allowed)).toHaveLength(20);
        // Half the held reservations succeed and are given back, each on the replica that did not take it.
        await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? second : first).refund(key, policy)));
        const after = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? first : second).take(key, policy)));
        expect(after.filter((d) => d.allowed)).toHaveLength(10);
      });
    }
  });
}
