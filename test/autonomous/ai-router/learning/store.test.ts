import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { appendEvent } from '../../../../src/platform/events/index.ts';
import {
  findDecision,
  insertFeedback,
  pruneOutcomes,
  readOutcomesSince,
  storeProxyOutcomes,
  type ProxyOutcome,
  type StoredOutcome,
} from '../../../../src/autonomous/ai-router/learning/store.ts';
import type { Queryable } from '../../../../src/platform/db/port.ts';
import { probeService } from '../../../support/services.ts';
import { forEachDatabase } from '../../../support/databases.ts';

const postgres = await probeService('postgres');

const proxyOutcome = (fields: Partial<ProxyOutcome> = {}): ProxyOutcome => ({
  event_id: randomUUID(),
  id: randomUUID(),
  request_id: randomUUID(),
  decision_id: randomUUID(),
  tenant: 'default',
  model: 'a',
  task_type: 'code',
  complexity: 'low',
  success: true,
  latency_ms: 120,
  prompt_tokens: 10,
  completion_tokens: 5,
  cost_usd: 0.00001,
  confidence: 0.9,
  attempts: [{ model: 'a', outcome: 'success', kind: null, latency_ms: 120 }],
  recorded_at: new Date().toISOString(),
  ...fields,
});

/** Every outcome read back, in pages of two so that every test also crosses page boundaries. */
const loadOutcomesSince = async (db: Queryable, since: Date, limit: number): Promise<StoredOutcome[]> => {
  const rows: StoredOutcome[] = [];
  await readOutcomesSince(db, { since, limit, pageSize: 2 }, (page) => {
    expect(page.length).toBeLessThanOrEqual(2);
    rows.push(...page);
  });
  return rows;
};

describe('learning store', () => {
  forEachDatabase(postgres, (fixture) => {
    beforeEach(async () => {
      await fixture.db().query('TRUNCATE ai_outcomes');
    });

    it('finds a decision by id in routing and proxied-call events, preferring the call (the model that served)', async () => {
      const db = fixture.db();
      const routed = randomUUID();
      await appendEvent(db, {
        event_type: 'ai.route.decided',
        source_service: 't',
        payload: { decision_id: routed, selected_model: 'a', task_type: 'code', complexity: 'high', confidence: 0.7, tenant: 'acme' },
      });
      expect(await findDecision(db, routed)).toEqual({
        tenant: 'acme',
        model: 'a',
        task_type: 'code',
        complexity: 'high',
        confidence: 0.7,
      });

      const proxied = randomUUID();
      await appendEvent(db, {
        event_type: 'ai.route.decided',
        source_service: 't',
        payload: { decision_id: proxied, selected_model: 'a', task_type: 'chat', complexity: 'low', confidence: 0.9 },
      });
      await appendEvent(db, {
        event_type: 'ai.request.completed',
        source_service: 't',
        payload: { decision_id: proxied, model: 'b', task_type: 'chat', complexity: 'low', confidence: 0.9, tenant: 'default' },
      });
      expect(await findDecision(db, proxied)).toMatchObject({ model: 'b', tenant: 'default' });

      // Other event types carrying the id do not count; a decision from before events named a tenant is the default tenant's.
      const other = randomUUID();
      await appendEvent(db, { event_type: 'ai.outcome.recorded', source_service: 't', payload: { decision_id: other, model: 'x' } });
      expect(await findDecision(db, other)).toBeNull();
      expect(await findDecision(db, randomUUID())).toBeNull();
    });

    it('inserts one feedback per decision and reports the second as null', async () => {
      const db = fixture.db();
      const decisionId = randomUUID();
      const outcome = {
        id: randomUUID(),
        decision_id: decisionId,
        source: 'feedback' as const,
        tenant: 'default',
        model: 'a',
        task_type: 'code',
        complexity: 'low' as const,
        success: true,
        quality_score: 0.5,
        latency_ms: 10,
        prompt_tokens: 1,
        completion_tokens: 2,
        cost_usd: 0.123456789,
        confidence: 0.8,
      };
      const stored = await insertFeedback(db, outcome);
      expect(stored).toMatchObject({ ...outcome, cost_usd: 0.12345679 });
      expect(await insertFeedback(db, { ...outcome, id: randomUUID(), success: false })).toBeNull();
    });

    it('stores proxied outcomes once per event, across batches and within one', async () => {
      const db = fixture.db();
      const one = proxyOutcome();
      const two = proxyOutcome({
        success: null,
        attempts: [{ model: 'a', outcome: 'PROVIDER_RATE_LIMITED', kind: 'rate_limited', latency_ms: 3 }],
      });
      const cached = randomUUID();
      const fresh = await storeProxyOutcomes(db, 'c', [one, two, one], [cached]);
      expect([...fresh].sort()).toEqual([one.event_id, two.event_id, cached].sort());
      expect(await storeProxyOutcomes(db, 'c', [one], [cached])).toEqual(new Set());
      const rows = await loadOutcomesSince(db, new Date(Date.now() - 60_000), 100);
      expect(rows).toHaveLength(2);
      expect(rows.find((r) => r.success === null)?.attempts).toEqual(two.attempts);
      // A different consumer has its own inbox.
      expect((await storeProxyOutcomes(db, 'other', [proxyOutcome()], [])).size).toBe(1);
    });

    it('loads each outcome with its tenant, so warm-up gives every tenant back only its own evidence', async () => {
      const db = fixture.db();
      await storeProxyOutcomes(db, 'c', [proxyOutcome({ tenant: 'acme' }), proxyOutcome({ tenant: 'globex', model: 'b' })], []);
      await insertFeedback(db, {
        id: randomUUID(),
        decision_id: randomUUID(),
        source: 'feedback',
        tenant: 'globex',
        model: 'c',
        task_type: 'code',
        complexity: 'high',
        success: false,
        quality_score: null,
        latency_ms: null,
        prompt_tokens: null,
        completion_tokens: null,
        cost_usd: null,
        confidence: 0.7,
      });
      const rows = await loadOutcomesSince(db, new Date(Date.now() - 60_000), 100);
      expect(rows.map((r) => [r.source, r.tenant, r.model]).sort()).toEqual([
        ['feedback', 'globex', 'c'],
        ['proxy', 'acme', 'a'],
        ['proxy', 'globex', 'b'],
      ]);
    });

    it('loads the newest outcomes oldest first, and prunes the expired ones', async () => {
      const db = fixture.db();
      const now = Date.now();
      const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
      await storeProxyOutcomes(
        db,
        'c',
        [proxyOutcome({ recorded_at: at(300) }), proxyOutcome({ recorded_at: at(30) }), proxyOutcome({ recorded_at: at(3) })],
        [],
      );
      const recent = await loadOutcomesSince(db, new Date(now - 60 * 60_000), 100);
      expect(recent.map((r) => Math.round((now - r.recorded_at) / 60_000))).toEqual([30, 3]);
      expect((await loadOutcomesSince(db, new Date(0), 1)).map((r) => Math.round((now - r.recorded_at) / 60_000))).toEqual([3]);
      expect(await pruneOutcomes(db, new Date(now - 60 * 60_000))).toBe(1);
      expect(await loadOutcomesSince(db, new Date(0), 100)).toHaveLength(2);
    });
  });
});
