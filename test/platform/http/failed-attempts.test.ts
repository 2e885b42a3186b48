import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/platform/clock.ts';
import { createFailedAttempts } from '../../../src/platform/http/failed-attempts.ts';
import { createMemoryRateLimiter } from '../../../src/platform/rate-limit/memory.ts';
import { createRedisRateLimiter } from '../../../src/platform/rate-limit/redis.ts';

const manualClock = (start = 1_000_000): Clock & { advance(ms: number): void } => {
  let now = start;
  return { now: () => now, sleep: async () => undefined, advance: (ms) => void (now += ms) };
};
const quiet = (): void => undefined;

describe('failed attempts', () => {
  it('reserves an attempt before it is checked: of 50 at once only the burst are held, and a success gives its attempt back', async () => {
    const clock = manualClock();
    const attempts = createFailedAttempts({ limiter: createMemoryRateLimiter({ clock }), policy: { limit: 5, periodMs: 60_000 }, clock });
    const reservations = await Promise.all(Array.from({ length: 50 }, () => attempts.reserve('10.0.0.1', quiet)));
    const held = reservations.flatMap((reservation) => (reservation.throttled ? [] : [reservation]));
    expect(held).toHaveLength(5);
    expect(attempts.blockedFor('10.0.0.1')).toBeGreaterThan(0);

    clock.advance(60_000);
    expect(attempts.blockedFor('10.0.0.1')).toBe(0);
    // Whole again: four succeed (given back), one fails (kept), so four more fit and not five.
    const next = await Promise.all(Array.from({ length: 5 }, () => attempts.reserve('10.0.0.1', quiet)));
    for (const [i, reservation] of next.entries()) {
      if (reservation.throttled) throw new Error('a whole allowance refused a reservation');
      await (i === 0 ? reservation.failed() : reservation.succeeded());
    }
    const after = await Promise.all(Array.from({ length: 5 }, () => attempts.reserve('10.0.0.1', quiet)));
    expect(after.filter((reservation) => !reservation.throttled)).toHaveLength(4);
  });

  it('blocks the address when the failure that took the last attempt is settled, for one refill interval', async () => {
    const clock = manualClock();
    const attempts = createFailedAttempts({ limiter: createMemoryRateLimiter({ clock }), policy: { limit: 2, periodMs: 60_000 }, clock });
    for (let i = 0; i < 2; i++) {
      const reservation = await attempts.reserve('10.0.0.2', quiet);
      if (reservation.throttled) throw new Error('refused within the allowance');
      expect(attempts.blockedFor('10.0.0.2')).toBe(0);
      await reservation.failed();
    }
    expect(attempts.blockedFor('10.0.0.2')).toBe(30_000);
    clock.advance(30_000);
    expect(attempts.blockedFor('10.0.0.2')).toBe(0);
    expect((await attempts.reserve('10.0.0.2', quiet)).throttled).toBe(false);
  });

  it("falls back to this process's own allowance when the shared limiter does not answer: the burst still bounds attempts at once", async () => {
    const clock = manualClock();
    const unreachable = createRedisRateLimiter({ url: 'redis://127.0.0.1:9', keyPrefix: 'failed-attempts-test:', timeoutMs: 50 });
    try {
      const errors: unknown[] = [];
      const attempts = createFailedAttempts({ limiter: unreachable, policy: { limit: 3, periodMs: 60_000 }, clock });
      const reservations = await Promise.all(Array.from({ length: 20 }, () => attempts.reserve('10.0.0.3', (error) => errors.push(error))));
      expect(reservations.filter((reservation) => !reservation.throttled)).toHaveLength(3);
      expect(errors).toHaveLength(20);
      await attempts.countFailure('10.0.0.4', quiet);
      expect(attempts.blockedFor('10.0.0.4')).toBe(0);
    } finally {
      await unreachable.close();
    }
  });

  it('forgets the address blocked longest ago when its table is full, never the one it is blocking now', async () => {
    const clock = manualClock();
    const attempts = createFailedAttempts({
      limiter: createMemoryRateLimiter({ clock }),
      policy: { limit: 1, periodMs: 3_600_000 },
      clock,
      maxBlocked: 3,
    });
    for (const ip of ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4']) {
      await attempts.countFailure(ip, quiet);
      clock.advance(1);
    }
    expect(['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4'].map((ip) => attempts.blockedFor(ip) > 0)).toEqual([false, true, true, true]);
    // Blocked again, an address is the newest: the next to go is the one blocked longest ago since.
    expect((await attempts.reserve('10.1.0.2', quiet)).throttled).toBe(true);
    await attempts.countFailure('10.1.0.5', quiet);
    expect(['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'].map((ip) => attempts.blockedFor(ip) > 0)).toEqual([true, false, true, true]);
  });

  it('keeps blocking at the default bound of 10,000 addresses', async () => {
    const clock = manualClock();
    const attempts = createFailedAttempts({
      limiter: createMemoryRateLimiter({ clock }),
      policy: { limit: 1, periodMs: 3_600_000 },
      clock,
    });
    for (let i = 0; i <= 10_000; i++) await attempts.countFailure(`10.2.${i >> 8}.${i & 255}`, quiet);
    expect(attempts.blockedFor('10.2.0.0')).toBe(0);
    expect(attempts.blockedFor('10.2.0.1')).toBeGreaterThan(0);
    expect(attempts.blockedFor(`10.2.${10_000 >> 8}.${10_000 & 255}`)).toBeGreaterThan(0);
  });
});
