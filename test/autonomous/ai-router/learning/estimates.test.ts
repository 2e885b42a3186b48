import { describe, expect, it } from 'vitest';
import {
  createModelEstimates,
  type LearningTenantEstimates,
  type Observation,
} from '../../../../src/autonomous/ai-router/learning/estimates.ts';

const MINUTE = 60_000;
const HALF_LIFE = 10 * MINUTE;

/** The tenant whose evidence the single-tenant cases record and read. */
const T = 'acme';

function setup(options: { priorStrength?: number; maxEntries?: number; maxEntriesPerTenant?: number } = {}) {
  let now = 1_000_000_000_000;
  const clock = { now: () => now };
  const learning = createModelEstimates({
    priorStrength: options.priorStrength ?? 20,
    halfLifeMs: HALF_LIFE,
    clock,
    ...(options.maxEntries === undefined ? {} : { maxEntries: options.maxEntries }),
    ...(options.maxEntriesPerTenant === undefined ? {} : { maxEntriesPerTenant: options.maxEntriesPerTenant }),
  });
  return {
    learning,
    /** Tenant T's estimates, read afresh on every call as a decision does. */
    estimates: {
      record: (observation: Observation) => learning.record(observation),
      estimate: (...args: Parameters<LearningTenantEstimates['estimate']>) => learning.forTenant(T).estimate(...args),
      explain: (...args: Parameters<LearningTenantEstimates['explain']>) => learning.forTenant(T).explain(...args),
      prune: () => learning.prune(),
      get size() {
        return learning.size;
      },
    },
    advance: (ms: number) => void (now += ms),
    now: () => now,
  };
}

const outcome = (model: string, success: number, at: number, extra: Partial<Observation> = {}): Observation => ({
  tenant: T,
  evidence: 'outcome',
  model,
  taskType: 'code',
  complexity: 'medium',
  success,
  at,
  ...extra,
});
const call = (model: string, success: number, at: number, latencyMs: number | null = null, tenant = T): Observation => ({
  tenant,
  evidence: 'call',
  model,
  taskType: 'code',
  complexity: 'medium',
  success,
  latencyMs,
  at,
});

describe('model estimates', () => {
  it('is the catalog prior when nothing is recorded', () => {
    const { estimates } = setup();
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.9, latencyMs: 800 })).toEqual({
      quality: 0.9,
      observations: 0,
      latencyMs: 800,
    });
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.7, latencyMs: null }).latencyMs).toBeNull();
    // The prior is taken on each call, not stored: a catalog edit shows at once.
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.7, latencyMs: null }).quality).toBe(0.7);
  });

  it('updates the Beta posterior with outcomes: (q·k + successes) / (k + n)', () => {
    const { estimates, now } = setup({ priorStrength: 20 });
    for (let i = 0; i < 10; i++) estimates.record(outcome('a', 0, now()));
    const afterFailures = estimates.estimate('a', 'code', 'medium', { quality: 0.9, latencyMs: null });
    expect(afterFailures.quality).toBeCloseTo(18 / 30, 12);
    expect(afterFailures.observations).toBeCloseTo(10, 12);
    for (let i = 0; i < 30; i++) estimates.record(outcome('a', 1, now()));
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.9, latencyMs: null }).quality).toBeCloseTo(48 / 60, 12);
    // Graded scores count as fractional successes.
    estimates.record(outcome('a', 0.5, now(), { complexity: 'high' }));
    expect(estimates.estimate('a', 'code', 'high', { quality: 0.5, latencyMs: null }).quality).toBeCloseTo(0.5, 12);
    estimates.record(outcome('a', 1, now(), { complexity: 'low' }));
    expect(estimates.estimate('a', 'code', 'low', { quality: 0.5, latencyMs: null }).quality).toBeCloseTo(11 / 21, 12);
    // Other task types and models keep their priors.
    expect(estimates.estimate('a', 'chat', 'medium', { quality: 0.9, latencyMs: null }).quality).toBe(0.9);
    expect(estimates.estimate('b', 'code', 'medium', { quality: 0.9, latencyMs: null }).quality).toBe(0.9);
  });

  it('learns availability per model from calls, across its task types, without washing out catalog quality', () => {
    const { estimates, now } = setup({ priorStrength: 20 });
    for (let i = 0; i < 1000; i++) estimates.record(call('a', 1, now()));
    // A thousand working calls say the model is up, not that its answers got better than the catalog says.
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.8, latencyMs: null }).quality).toBeCloseTo(0.8, 12);
    for (let i = 0; i < 10; i++) estimates.record(call('b', 0, now()));
    const b = estimates.explain('b', 'chat', 'high', { quality: 0.9, latencyMs: null });
    expect(b.availability).toBeCloseTo(20 / 30, 12);
    expect(b.answerQuality).toBe(0.9);
    expect(b.quality).toBeCloseTo(0.9 * (20 / 30), 12);
    expect(b.callObservations).toBeCloseTo(10, 12);
  });

  it('halves evidence every half-life and forgets it in the end', () => {
    const { estimates, now, advance } = setup({ priorStrength: 20 });
    for (let i = 0; i < 20; i++) estimates.record(outcome('a', 0, now()));
    const prior = { quality: 0.9, latencyMs: null };
    expect(estimates.estimate('a', 'code', 'medium', prior).quality).toBeCloseTo(18 / 40, 12);
    advance(HALF_LIFE);
    expect(estimates.estimate('a', 'code', 'medium', prior).observations).toBeCloseTo(10, 9);
    expect(estimates.estimate('a', 'code', 'medium', prior).quality).toBeCloseTo(18 / 30, 9);
    advance(2 * HALF_LIFE);
    expect(estimates.estimate('a', 'code', 'medium', prior).observations).toBeCloseTo(2.5, 9);
    advance(20 * HALF_LIFE);
    expect(estimates.estimate('a', 'code', 'medium', prior).quality).toBeCloseTo(0.9, 5);
  });

  it('weighs an observation recorded late by its own age, and a future one as now', () => {
    const { estimates, now, advance } = setup();
    advance(HALF_LIFE);
    estimates.record(outcome('a', 0, now()));
    // One half-life older than the stored evidence: it counts half.
    estimates.record(outcome('a', 0, now() - HALF_LIFE));
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.5, latencyMs: null }).observations).toBeCloseTo(1.5, 12);
    // The same result whichever order they arrive in.
    const other = setup();
    other.advance(HALF_LIFE);
    other.estimates.record(outcome('a', 0, other.now() - HALF_LIFE));
    other.estimates.record(outcome('a', 0, other.now()));
    expect(other.estimates.estimate('a', 'code', 'medium', { quality: 0.5, latencyMs: null }).observations).toBeCloseTo(1.5, 12);
  });

  it('learns latency as a decayed mean pulled towards the catalog figure by a small prior weight', () => {
    const { estimates, now, advance } = setup();
    const prior = { quality: 0.9, latencyMs: 1000 };
    for (let i = 0; i < 8; i++) estimates.record(call('a', 1, now(), 200));
    // (1000·2 + 200·8) / (2 + 8)
    expect(estimates.estimate('a', 'code', 'medium', prior).latencyMs).toBeCloseTo(360, 9);
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.9, latencyMs: null }).latencyMs).toBeCloseTo(200, 9);
    // Failed calls' latency is not the model's speed: the mapping never passes it, and feedback latency counts.
    estimates.record(outcome('a', 1, now(), { latencyMs: 2200 }));
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0.9, latencyMs: null }).latencyMs).toBeCloseTo((200 * 8 + 2200) / 9, 9);
    advance(50 * HALF_LIFE);
    expect(estimates.estimate('a', 'code', 'medium', prior).latencyMs).toBeCloseTo(1000, 3);
  });

  it('prunes entries whose weight has decayed away and stays within its cap', () => {
    const { estimates, now, advance } = setup({ maxEntries: 100 });
    for (let i = 0; i < 50; i++) estimates.record(outcome(`old-${i}`, 1, now()));
    expect(estimates.size).toBe(50);
    advance(20 * HALF_LIFE);
    estimates.record(outcome('fresh', 0, now()));
    estimates.prune();
    expect(estimates.size).toBe(1);
    for (let i = 0; i < 1000; i++) estimates.record(outcome(`m-${i}`, 0, now()));
    expect(estimates.size).toBeLessThanOrEqual(100);
    // The most recently updated survive eviction.
    expect(estimates.estimate('m-999', 'code', 'medium', { quality: 0.9, latencyMs: null }).observations).toBeCloseTo(1, 9);
  });

  it("learns per tenant: one tenant's outcomes and failed calls move none of another's figures", () => {
    const { learning, now } = setup();
    const prior = { quality: 0.9, latencyMs: 800 };
    for (let i = 0; i < 80; i++) {
      learning.record({ ...outcome('a', 0, now(), { latencyMs: 9000 }), tenant: 'b-corp' });
      learning.record(call('a', 0, now(), null, 'b-corp'));
    }
    const theirs = learning.forTenant('b-corp').explain('a', 'code', 'medium', prior);
    expect(theirs.outcomeObservations).toBeCloseTo(80, 9);
    expect(theirs.callObservations).toBeCloseTo(80, 9);
    expect(theirs.quality).toBeLessThan(0.2);
    // Tenant T, and one never seen, are still exactly at the catalog prior.
    const untouched = { quality: 0.9, observations: 0, latencyMs: 800 };
    expect(learning.forTenant(T).estimate('a', 'code', 'medium', prior)).toEqual(untouched);
    expect(learning.forTenant('nobody').estimate('a', 'code', 'medium', prior)).toEqual(untouched);
    // And the other way round: T's evidence leaves b-corp's figures as they were.
    for (let i = 0; i < 50; i++) learning.record(outcome('a', 1, now()));
    expect(learning.forTenant('b-corp').explain('a', 'code', 'medium', prior)).toEqual(theirs);
    expect(learning.forTenant(T).estimate('a', 'code', 'medium', prior).quality).toBeCloseTo((18 + 50) / 70, 12);
    expect(learning.tenants).toBe(2);
  });

  it("bounds what one tenant holds: past its cap it loses its own oldest entries, never another tenant's", () => {
    const { learning, now } = setup({ maxEntries: 1000, maxEntriesPerTenant: 100 });
    const prior = { quality: 0.9, latencyMs: null };
    learning.record({ ...outcome('a', 0, now()), tenant: 'quiet' });
    // A flood of distinct task types (a concrete-model call may name any): the flooding tenant pays for it.
    for (let i = 0; i < 5000; i++) learning.record(outcome('a', 1, now(), { taskType: `junk-${i}` }));
    expect(learning.size).toBeLessThanOrEqual(101);
    expect(learning.forTenant('quiet').estimate('a', 'code', 'medium', prior).observations).toBeCloseTo(1, 9);
    expect(learning.forTenant(T).estimate('a', 'junk-4999', 'medium', prior).observations).toBeCloseTo(1, 9);
    expect(learning.forTenant(T).estimate('a', 'junk-0', 'medium', prior).observations).toBe(0);
  });

  it('bounds what all tenants hold together: past the cap, the least recently updated tenants fall back to the prior', () => {
    const { learning, now, advance } = setup({ maxEntries: 1000, maxEntriesPerTenant: 10 });
    const prior = { quality: 0.9, latencyMs: null };
    for (let t = 0; t < 500; t++) {
      for (let m = 0; m < 5; m++) learning.record({ ...outcome(`m-${m}`, 0, now()), tenant: `tenant-${t}` });
      advance(1);
    }
    expect(learning.size).toBeLessThanOrEqual(1000);
    expect(learning.tenants).toBeLessThanOrEqual(200);
    expect(learning.forTenant('tenant-499').estimate('m-0', 'code', 'medium', prior).observations).toBeCloseTo(1, 4);
    expect(learning.forTenant('tenant-0').estimate('m-0', 'code', 'medium', prior)).toEqual({
      quality: 0.9,
      observations: 0,
      latencyMs: null,
    });
  });

  it('ignores what cannot be an observation time and clamps scores', () => {
    const { estimates, now } = setup();
    estimates.record(outcome('a', 0, Number.NaN));
    expect(estimates.size).toBe(0);
    estimates.record(outcome('a', 7, now()));
    expect(estimates.estimate('a', 'code', 'medium', { quality: 0, latencyMs: null }).quality).toBeCloseTo(1 / 21, 12);
    expect(() => createModelEstimates({ priorStrength: 0, halfLifeMs: 1, clock: { now } })).toThrow(/priorStrength/);
  });
});

/**
 * Two models serve the same task: `a` (catalog 0.90) and `b` (0.85). One request per second goes
 * to the better estimate, one in twenty to the other (exploration); every answer is a call event.
 * `a` fails every call from minute 5 to minute 15, then works again.
 */
function simulate(): Array<{ minute: number; shareA: number }> {
  const { estimates, now, advance } = setup({ priorStrength: 20 });
  const prior = { a: { quality: 0.9, latencyMs: null }, b: { quality: 0.85, latencyMs: null } };
  const perMinute: Array<{ minute: number; shareA: number }> = [];
  let toA = 0;
  for (let second = 0; second < 60 * 60; second++) {
    const qa = estimates.estimate('a', 'code', 'medium', prior.a).quality;
    const qb = estimates.estimate('b', 'code', 'medium', prior.b).quality;
    const best = qa >= qb ? 'a' : 'b';
    const model = second % 20 === 19 ? (best === 'a' ? 'b' : 'a') : best;
    const minute = Math.floor(second / 60);
    const aDown = minute >= 5 && minute < 15;
    estimates.record(call(model, model === 'a' && aDown ? 0 : 1, now()));
    if (model === 'a') toA++;
    if (second % 60 === 59) {
      perMinute.push({ minute, shareA: toA / 60 });
      toA = 0;
    }
    advance(1000);
  }
  return perMinute;
}

describe('a failing model loses traffic within minutes and earns it back after recovery (half-life 10 min, prior strength 20)', () => {
  const shares = simulate();
  const share = (minute: number): number => shares[minute]?.shareA ?? Number.NaN;

  it('serves the better model while it works', () => {
    for (let m = 0; m < 5; m++) expect(share(m)).toBeGreaterThanOrEqual(0.9);
  });

  it('moves traffic away in the first minute of the outage', () => {
    // Five minutes of successes behind it: about 18 s of failures (6% of the decayed evidence) put a below b.
    expect(share(5)).toBeLessThan(0.5);
    for (let m = 6; m < 15; m++) expect(share(m)).toBeLessThanOrEqual(0.06);
  });

  it('gives it back once old failures have faded', () => {
    const back = shares.findIndex((s) => s.minute >= 15 && s.shareA >= 0.9);
    console.info(`a's share per minute: ${shares.map((s) => s.shareA.toFixed(2)).join(' ')}; back at minute ${back}`);
    expect(back).toBeGreaterThan(15);
    expect(back - 15).toBeLessThanOrEqual(30);
    for (let m = back; m < 60; m++) expect(share(m)).toBeGreaterThanOrEqual(0.9);
  });
});
