import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { createModelEstimates, type LearningModelEstimates } from '../../../../src/autonomous/ai-router/learning/estimates.ts';
import type { CallAttempt } from '../../../../src/autonomous/ai-router/learning/observations.ts';
import {
  insertFeedback,
  readOutcomesSince,
  storeProxyOutcomes,
  type ProxyOutcome,
  type StoredOutcome,
} from '../../../../src/autonomous/ai-router/learning/store.ts';
import { replayOutcome, warmUpEstimates } from '../../../../src/autonomous/ai-router/learning/warm-up.ts';
import type { Complexity } from '../../../../src/autonomous/ai-router/types.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import { forEachDatabase } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';

const postgres = await probeService('postgres');

const MINUTE = 60_000;
const TENANTS = ['acme', 'globex'];
const MODELS = ['a', 'b', 'c'];
const TASKS = ['code', 'chat'];
const COMPLEXITIES: Complexity[] = ['low', 'high'];
const ATTEMPTS: ReadonlyArray<readonly CallAttempt[]> = [
  [{ model: 'a', outcome: 'success', kind: null, latency_ms: 120 }],
  [
    { model: 'b', outcome: 'PROVIDER_TIMEOUT', kind: 'timeout', latency_ms: 30_000 },
    { model: 'a', outcome: 'success', kind: null, latency_ms: 340 },
  ],
  [{ model: 'c', outcome: 'PROVIDER_SERVER_ERROR', kind: 'server', latency_ms: 80 }],
  [{ model: 'b', outcome: 'PROVIDER_RATE_LIMITED', kind: 'rate_limited', latency_ms: 5 }],
  [{ model: 'c', outcome: 'success', kind: null, latency_ms: 950 }],
];

/**
 * Outcomes as warm-up finds them: proxied calls two by two at the same instant (ties that only the
 * id orders), some older than the window, and feedback recorded by the database clock, microseconds
 * apart (a cursor kept as a millisecond Date would skip or repeat them).
 */
async function storeOutcomes(db: Database, now: number): Promise<void> {
  const proxied = (i: number, minutesAgo: number): ProxyOutcome => {
    const attempts = ATTEMPTS[i % ATTEMPTS.length] as readonly CallAttempt[];
    return {
      event_id: randomUUID(),
      id: randomUUID(),
      request_id: randomUUID(),
      decision_id: randomUUID(),
      tenant: TENANTS[i % TENANTS.length] as string,
      model: (attempts[0] as CallAttempt).model,
      task_type: TASKS[i % TASKS.length] as string,
      complexity: COMPLEXITIES[Math.floor(i / 3) % COMPLEXITIES.length] as Complexity,
      success: null,
      latency_ms: 100 + i,
      prompt_tokens: 10,
      completion_tokens: 5,
      cost_usd: 0.0001,
      confidence: 0.8,
      attempts,
      recorded_at: new Date(now - minutesAgo * MINUTE).toISOString(),
    };
  };
  const recent = Array.from({ length: 30 }, (_, i) => proxied(i, Math.floor(i / 2) * 1.5));
  const expired = Array.from({ length: 3 }, (_, i) => proxied(i, 70 + i));
  await storeProxyOutcomes(db, 'warm-up-test', [...recent, ...expired], []);
  for (let i = 0; i < 4; i++) {
    await insertFeedback(db, {
      id: randomUUID(),
      decision_id: randomUUID(),
      source: 'feedback',
      tenant: TENANTS[i % TENANTS.length] as string,
      model: MODELS[i % MODELS.length] as string,
      task_type: 'code',
      complexity: 'high',
      success: i !== 1,
      quality_score: i === 2 ? 0.4 : null,
      latency_ms: i === 3 ? null : 700 + i,
      prompt_tokens: null,
      completion_tokens: null,
      cost_usd: null,
      confidence: 0.7,
    });
  }
  // All four in one millisecond, 100 µs apart.
  await db.query(
    `UPDATE ai_outcomes o SET recorded_at = date_trunc('milliseconds', now()) + f.k * interval '100 microseconds'
     FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM ai_outcomes WHERE source = 'feedback') f WHERE o.id = f.id`,
  );
}

/** What warm-up did before it read in pages: one statement for the newest `limit` rows, replayed oldest first. */
async function replayUnpaged(db: Database, estimates: LearningModelEstimates, since: Date, limit: number): Promise<number> {
  const { rows } = await db.query<Omit<StoredOutcome, 'recorded_at'> & { recorded_at: Date | string }>(
    `SELECT * FROM (
       SELECT source, tenant, model, task_type, complexity, success, quality_score, latency_ms, attempts, recorded_at
       FROM ai_outcomes WHERE recorded_at >= $1 ORDER BY recorded_at DESC LIMIT $2
     ) newest ORDER BY recorded_at`,
    [since.toISOString(), limit],
  );
  for (const row of rows) replayOutcome(estimates, { ...row, recorded_at: new Date(row.recorded_at).getTime() });
  return rows.length;
}

/** Every figure the estimates give for every tenant, model, task and complexity the outcomes name. */
function figures(estimates: LearningModelEstimates): Array<[string, number | null]> {
  const prior = { quality: 0.8, latencyMs: 500 };
  return TENANTS.flatMap((tenant) =>
    MODELS.flatMap((model) =>
      TASKS.flatMap((task) =>
        COMPLEXITIES.flatMap((complexity) =>
          Object.entries(estimates.forTenant(tenant).explain(model, task, complexity, prior)).map(
            ([name, value]): [string, number | null] => [`${tenant}/${model}/${task}/${complexity} ${name}`, value],
          ),
        ),
      ),
    ),
  );
}

describe('learning warm-up', () => {
  forEachDatabase(postgres, (fixture) => {
    const now = Date.now();
    const since = new Date(now - 60 * MINUTE);
    const makeEstimates = () => createModelEstimates({ priorStrength: 20, halfLifeMs: 10 * MINUTE, clock: { now: () => now + MINUTE } });

    beforeEach(async () => {
      await fixture.db().query('TRUNCATE ai_outcomes');
      await storeOutcomes(fixture.db(), now);
    });

    // 34 outcomes in the window; the newest 24 are all after one instant and all before the next,
    // so the unpaged statement's choice among same-instant rows cannot differ from the pages'.
    it.each([1, 4, 5, 1_000])('gives the same estimates reading %i outcomes a page as the unpaged replay', async (pageSize) => {
      const db = fixture.db();
      const unpaged = makeEstimates();
      expect(await replayUnpaged(db, unpaged, since, 24)).toBe(24);
      const paged = makeEstimates();
      expect(await warmUpEstimates(db, paged, { since, maxRows: 24, pageSize })).toBe(24);

      const expected = figures(unpaged);
      const actual = figures(paged);
      expect(expected.filter(([name, value]) => name.endsWith('Observations') && (value ?? 0) > 0).length).toBeGreaterThan(5);
      expect(actual.map(([name]) => name)).toEqual(expected.map(([name]) => name));
      actual.forEach(([name, value], i) => {
        const want = (expected[i] as [string, number | null])[1];
        if (want === null) expect(value, name).toBeNull();
        else expect(value, name).toBeCloseTo(want, 9);
      });
      expect(paged.size).toBe(unpaged.size);
    });

    it('reads every outcome in the window once, oldest first, never more than a page at a time', async () => {
      const db = fixture.db();
      const pages: number[] = [];
      const read: StoredOutcome[] = [];
      const count = await readOutcomesSince(db, { since, limit: 1_000, pageSize: 3 }, (page) => {
        pages.push(page.length);
        read.push(...page);
      });
      expect(count).toBe(34);
      expect(pages).toEqual([...Array.from({ length: 11 }, () => 3), 1]);
      expect(read.map((row) => row.recorded_at)).toEqual(read.map((row) => row.recorded_at).sort((x, y) => x - y));
      expect(read.filter((row) => row.source === 'feedback')).toHaveLength(4);
      expect(read.every((row) => row.recorded_at >= since.getTime())).toBe(true);
      // The same rows as one statement reads, each once.
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM ai_outcomes WHERE recorded_at >= $1', [
        since.toISOString(),
      ]);
      expect(rows[0]?.n).toBe(34);
      expect(new Set(read.map((row) => JSON.stringify(row))).size).toBe(34);
    });

    it('replays nothing when the limit is 0 or no outcome is recent enough', async () => {
      const db = fixture.db();
      expect(await warmUpEstimates(db, makeEstimates(), { since, maxRows: 0, pageSize: 5 })).toBe(0);
      const none = makeEstimates();
      expect(await warmUpEstimates(db, none, { since: new Date(now + MINUTE), maxRows: 100, pageSize: 5 })).toBe(0);
      expect(none.size).toBe(0);
    });
  });
});
