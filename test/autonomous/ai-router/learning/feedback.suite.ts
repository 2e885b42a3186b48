import { randomUUID } from 'node:crypto';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { Config } from '../../../../src/platform/config/schema.ts';
import type { RunningBlocks } from '../../../../src/start.ts';
import { eventually, startTestBlocks } from '../../../support/blocks.ts';
import { testCredentials } from '../../../support/credentials.ts';
import { clientOf, emitCallEvent, estimateOf, type Stats } from './learning.fixtures.ts';

export interface LearningEnvironment {
  /** Configuration using the learning catalog (see learning.fixtures.ts). */
  readonly config: Config;
  cleanup(): Promise<void>;
}

const CODE = { task_type: 'code', context: { prompt: 'Merge two sorted arrays.' } };

/**
 * Feedback and learning end to end through a running Blocks: written once, run on the embedded
 * defaults and on PostgreSQL with NATS.
 */
export function learningSuite(name: string, makeEnvironment: () => Promise<LearningEnvironment>): void {
  describe(`AI feedback and learning end to end (${name})`, () => {
    let environment: LearningEnvironment;
    let blocks: RunningBlocks;
    // Read through a getter: the keys live in the database and outlast the restart at the end.
    const creds = testCredentials({
      get identity() {
        return blocks.identity;
      },
    });
    const client = clientOf(
      () => blocks.urls.autonomous as string,
      (tenant) => creds.headers(tenant),
    );
    const outcomeRows = async (decisionId: string) =>
      (
        await blocks.platform.db.query<{ source: string; model: string; success: boolean | null }>(
          'SELECT source, model, success FROM ai_outcomes WHERE decision_id = $1',
          [decisionId],
        )
      ).rows;
    const recordedEvents = async (decisionId: string): Promise<number> =>
      Number(
        (
          await blocks.platform.db.query<{ n: string }>(
            `SELECT count(*) AS n FROM events WHERE event_type = 'ai.outcome.recorded' AND payload ->> 'decision_id' = $1`,
            [decisionId],
          )
        ).rows[0]?.n,
      );

    beforeAll(async () => {
      environment = await makeEnvironment();
      blocks = await startTestBlocks({ config: environment.config, roles: ['autonomous'] });
    }, 60_000);
    afterAll(async () => {
      await blocks?.close();
      await environment?.cleanup();
    });

    it('records feedback against a decision: 201 with the decision model, task, complexity and confidence', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      const res = await client.feedback({
        decision_id: decision.decision_id,
        success: true,
        quality_score: 0.75,
        latency_ms: 640,
        prompt_tokens: 120,
        completion_tokens: 80,
        cost_usd: 0.00028,
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        decision_id: decision.decision_id,
        source: 'feedback',
        tenant: 'default',
        model: decision.selected_model,
        task_type: 'code',
        complexity: 'medium',
        success: true,
        quality_score: 0.75,
        latency_ms: 640,
        prompt_tokens: 120,
        completion_tokens: 80,
        cost_usd: 0.00028,
        confidence: decision.confidence,
      });
      expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(Date.parse(res.body.recorded_at as string)).toBeGreaterThan(Date.now() - 60_000);
      expect(await outcomeRows(decision.decision_id)).toEqual([{ source: 'feedback', model: decision.selected_model, success: true }]);
      expect(await recordedEvents(decision.decision_id)).toBe(1);
    });

    it('accepts the least a feedback needs: decision id and success', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      const res = await client.feedback({ decision_id: decision.decision_id, success: false });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ success: false, quality_score: null, latency_ms: null, cost_usd: null });
    });

    const bad: Array<[string, unknown, string]> = [
      ['a missing decision_id', { success: true }, '/decision_id'],
      ['a decision_id that is not a uuid', { decision_id: 'abc', success: true }, '/decision_id'],
      ['a missing success', { decision_id: randomUUID() }, '/success'],
      ['success as a string', { decision_id: randomUUID(), success: 'yes' }, '/success'],
      ['a quality_score above 1', { decision_id: randomUUID(), success: true, quality_score: 1.5 }, '/quality_score'],
      ['a negative latency', { decision_id: randomUUID(), success: true, latency_ms: -1 }, '/latency_ms'],
      ['fractional tokens', { decision_id: randomUUID(), success: true, prompt_tokens: 1.5 }, '/prompt_tokens'],
      ['a negative cost', { decision_id: randomUUID(), success: true, cost_usd: -0.1 }, '/cost_usd'],
      ['an unknown field', { decision_id: randomUUID(), success: true, model: 'x' }, '/model'],
    ];
    it.each(bad)('refuses %s with a 400 naming the field', async (_, body, pointer) => {
      const res = await client.feedback(body);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect((res.body.errors as Array<{ pointer: string }>).map((e) => e.pointer)).toContain(pointer);
    });

    it('refuses malformed JSON with a 400 problem', async () => {
      const res = await client.feedback('{"decision_id":');
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('MALFORMED_JSON');
    });

    it('answers 404 DECISION_NOT_FOUND for a decision never made', async () => {
      const id = randomUUID();
      const res = await client.feedback({ decision_id: id, success: true });
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'DECISION_NOT_FOUND', decision_id: id });
      expect(await outcomeRows(id)).toEqual([]);
    });

    it("answers another tenant's decision exactly like an unknown one", async () => {
      const theirs = await client.route({ ...CODE, complexity: 'medium' }, 'acme');
      const foreign = await client.feedback({ decision_id: theirs.decision_id, success: false }, 'default');
      const unknownId = randomUUID();
      const unknown = await client.feedback({ decision_id: unknownId, success: false }, 'default');
      expect(foreign.status).toBe(404);
      expect(foreign.body.code).toBe('DECISION_NOT_FOUND');
      // Same shape and wording, only the id differs: nothing tells the caller the decision exists.
      expect(foreign.body.detail).toBe((unknown.body.detail as string).replace(unknownId, theirs.decision_id));
      expect(await outcomeRows(theirs.decision_id)).toEqual([]);
      const own = await client.feedback({ decision_id: theirs.decision_id, success: true }, 'acme');
      expect(own.status).toBe(201);
      expect(own.body.tenant).toBe('acme');
    });

    it("refuses a key of one tenant that claims another's decision through x-blocks-tenant (403 TENANT_MISMATCH)", async () => {
      const theirs = await client.route({ ...CODE, complexity: 'medium' });
      const claiming = clientOf(
        () => blocks.urls.autonomous as string,
        async () => ({ ...(await creds.headers('acme')), 'x-blocks-tenant': 'default' }),
      );
      const res = await claiming.feedback({ decision_id: theirs.decision_id, success: false });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('TENANT_MISMATCH');
      expect(await outcomeRows(theirs.decision_id)).toEqual([]);
    });

    it('needs ai:feedback to give feedback and ai:read to read stats: a key holds only what it was granted', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      const reader = clientOf(
        () => blocks.urls.autonomous as string,
        (tenant) => creds.headers(tenant, ['ai:read']),
      );
      const refused = await reader.feedback({ decision_id: decision.decision_id, success: true });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:feedback' });
      expect(await outcomeRows(decision.decision_id)).toEqual([]);
      expect((await reader.stats()).status).toBe(200);

      const rater = clientOf(
        () => blocks.urls.autonomous as string,
        (tenant) => creds.headers(tenant, ['ai:feedback']),
      );
      const stats = await rater.stats();
      expect(stats.status).toBe(403);
      expect(stats.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:read' });
      expect((await rater.feedback({ decision_id: decision.decision_id, success: true })).status).toBe(201);
      expect(await outcomeRows(decision.decision_id)).toEqual([{ source: 'feedback', model: decision.selected_model, success: true }]);
    });

    it('refuses feedback without a credential (401, WWW-Authenticate) and with a revoked key (401 INVALID_CREDENTIALS)', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      const anonymous = clientOf(
        () => blocks.urls.autonomous as string,
        () => Promise.resolve({}),
      );
      const res = await fetch(`${blocks.urls.autonomous as string}/api/v1/autonomous/ai/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ decision_id: decision.decision_id, success: true }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="blocks"');
      expect(await res.json()).toMatchObject({ code: 'AUTHENTICATION_REQUIRED' });
      expect((await anonymous.stats()).body.code).toBe('AUTHENTICATION_REQUIRED');

      const context = { correlationId: `feedback-revoke-${decision.decision_id}` };
      const made = await blocks.identity.apiKeys.create('default', { name: 'revoked', scopes: ['ai:feedback'], expiresAt: null }, context);
      const holder = clientOf(
        () => blocks.urls.autonomous as string,
        () => Promise.resolve({ 'x-api-key': made.key }),
      );
      // The key works until it is revoked (an unknown decision proves it got past the access decision).
      expect((await holder.feedback({ decision_id: randomUUID(), success: true })).body.code).toBe('DECISION_NOT_FOUND');
      await blocks.identity.apiKeys.revoke('default', made.id, context);
      const revoked = await holder.feedback({ decision_id: decision.decision_id, success: true });
      expect(revoked.status).toBe(401);
      expect(revoked.body.code).toBe('INVALID_CREDENTIALS');
      expect(await outcomeRows(decision.decision_id)).toEqual([]);
    });

    it('answers 409 OUTCOME_ALREADY_RECORDED to a second feedback and keeps the first', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      expect((await client.feedback({ decision_id: decision.decision_id, success: true })).status).toBe(201);
      const second = await client.feedback({ decision_id: decision.decision_id, success: false });
      expect(second.status).toBe(409);
      expect(second.body).toMatchObject({ code: 'OUTCOME_ALREADY_RECORDED', decision_id: decision.decision_id });
      expect(await outcomeRows(decision.decision_id)).toEqual([{ source: 'feedback', model: decision.selected_model, success: true }]);
      expect(await recordedEvents(decision.decision_id)).toBe(1);
    });

    it('records exactly one of many concurrent feedbacks for one decision', async () => {
      const decision = await client.route({ ...CODE, complexity: 'medium' });
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) => client.feedback({ decision_id: decision.decision_id, success: i % 2 === 0 })),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([201, ...Array<number>(11).fill(409)]);
      expect(await outcomeRows(decision.decision_id)).toHaveLength(1);
      expect(await recordedEvents(decision.decision_id)).toBe(1);
    });

    it('learns from feedback: the estimate of the decided model moves, as GET /stats shows', async () => {
      const before = estimateOf((await client.stats()).body, 'learn-strong', 'code', 'low');
      expect(before.prior.quality).toBe(0.9);
      for (let i = 0; i < 4; i++) {
        // Preferred, so it stays the decided model while its estimate falls.
        const decision = await client.route({ ...CODE, complexity: 'low', preferred_model: 'learn-strong' });
        expect(decision.selected_model).toBe('learn-strong');
        expect((await client.feedback({ decision_id: decision.decision_id, success: false, latency_ms: 3000 })).status).toBe(201);
      }
      const after = await eventually(
        async () => estimateOf((await client.stats()).body, 'learn-strong', 'code', 'low'),
        (e) => e.outcome_observations >= before.outcome_observations + 3.99,
      );
      // Four failures on a prior of 0.9 × 20: (18 + 0) / (20 + 4), give or take the decay of a few seconds.
      expect(after.answer_quality).toBeCloseTo(18 / 24, 3);
      expect(after.quality).toBeLessThan(before.quality);
      expect(after.latency_ms).toBeGreaterThan(1000);
    });

    it('routes elsewhere after enough failure feedback for the chosen model', async () => {
      const first = await client.route({ ...CODE, complexity: 'high' });
      expect(first.selected_model).toBe('learn-strong');
      let decision = first;
      for (let i = 0; i < 10 && decision.selected_model === 'learn-strong'; i++) {
        expect((await client.feedback({ decision_id: decision.decision_id, success: false })).status).toBe(201);
        // Feedback reaches the estimates through the event bus: wait for it before routing again.
        await eventually(
          async () => estimateOf((await client.stats()).body, 'learn-strong', 'code', 'high').outcome_observations,
          (n) => n >= i + 0.99,
        );
        decision = await client.route({ ...CODE, complexity: 'high' });
      }
      expect(decision.selected_model).toBe('learn-backup');
      // The confidence is the learned estimate of the model chosen.
      const backup = estimateOf((await client.stats()).body, 'learn-backup', 'code', 'high');
      expect(decision.confidence).toBeCloseTo(backup.quality, 2);
    });

    it("learns per tenant: B's failure feedback and failed calls do not move A's decision, A's do not move B's, and /stats shows each only its own", async () => {
      const [a, b] = ['learn-tenant-a', 'learn-tenant-b'];
      const MEDIUM = { ...CODE, complexity: 'medium' };
      const strong = async (tenant: string) => estimateOf((await client.stats('', tenant)).body, 'learn-strong', 'code', 'medium');
      const backup = async (tenant: string) => estimateOf((await client.stats('', tenant)).body, 'learn-backup', 'code', 'medium');
      const first = { a: await client.route(MEDIUM, a), b: await client.route(MEDIUM, b) };
      expect(first.a).toMatchObject({ selected_model: 'learn-strong', confidence: 0.9 });
      expect(first.b).toMatchObject({ selected_model: 'learn-strong', confidence: 0.9 });

      // B: five failed feedbacks and five failed proxied calls of learn-strong.
      for (let i = 0; i < 5; i++) {
        const decision = await client.route({ ...MEDIUM, preferred_model: 'learn-strong' }, b);
        expect((await client.feedback({ decision_id: decision.decision_id, success: false }, b)).status).toBe(201);
        await emitCallEvent(blocks, {
          tenant: b,
          model: 'learn-strong',
          taskType: 'code',
          complexity: 'medium',
          failed: true,
          attempts: [{ model: 'learn-strong', outcome: 'PROVIDER_SERVER_ERROR', kind: 'server', latency_ms: 20 }],
        });
      }
      const learnedByB = await eventually(
        () => strong(b),
        (e) => e.outcome_observations > 4.9 && e.call_observations > 4.9,
      );
      expect(learnedByB.quality).toBeLessThan(0.85);
      expect((await client.route(MEDIUM, b)).selected_model).toBe('learn-backup');
      // A routes as before, on the catalog figures, and its /stats shows none of B's evidence.
      expect(await client.route(MEDIUM, a)).toMatchObject({ selected_model: 'learn-strong', confidence: 0.9 });
      const seenByA = (await client.stats('', a)).body.estimates;
      expect(seenByA.filter((e) => e.observations > 0)).toEqual([]);
      expect(await strong(a)).toMatchObject({ quality: 0.9, observations: 0, availability: 1, answer_quality: 0.9 });

      // The other way round: A's failures of learn-backup leave B's figures and choice as they were.
      const bBackup = await backup(b);
      for (let i = 0; i < 5; i++) {
        const decision = await client.route({ ...MEDIUM, preferred_model: 'learn-backup' }, a);
        expect((await client.feedback({ decision_id: decision.decision_id, success: false }, a)).status).toBe(201);
      }
      await eventually(
        () => backup(a),
        (e) => e.outcome_observations > 4.9,
      );
      expect((await backup(b)).outcome_observations).toBe(bBackup.outcome_observations);
      expect((await backup(b)).quality).toBeCloseTo(bBackup.quality, 6);
      expect((await client.route(MEDIUM, b)).selected_model).toBe('learn-backup');
      expect((await strong(b)).outcome_observations).toBeLessThan(learnedByB.outcome_observations + 0.01);
    });

    it('stores proxied calls as outcomes and learns availability and latency from every attempt', async () => {
      const decisionId = randomUUID();
      const before = (await client.stats()).body;
      const { eventId } = await emitCallEvent(blocks, {
        decisionId,
        model: 'proxy-b',
        taskType: 'extraction',
        complexity: 'low',
        confidence: 0.9,
        attempts: [
          { model: 'proxy-a', outcome: 'PROVIDER_SERVER_ERROR', kind: 'server', latency_ms: 30 },
          { model: 'proxy-b', outcome: 'success', kind: null, latency_ms: 200 },
        ],
      });
      const rows = await eventually(
        () => outcomeRows(decisionId),
        (r) => r.length === 1,
      );
      // The row is about the decided model (the first attempt): calibration compares its confidence with that.
      expect(rows).toEqual([{ source: 'proxy', model: 'proxy-a', success: false }]);
      const stats = await eventually(
        async () => (await client.stats()).body,
        (s) => estimateOf(s, 'proxy-b', 'extraction', 'low').call_observations > 0.99,
      );
      const a = estimateOf(stats, 'proxy-a', 'extraction', 'low');
      expect(a.call_observations - estimateOf(before, 'proxy-a', 'extraction', 'low').call_observations).toBeCloseTo(1, 2);
      expect(a.availability).toBeLessThan(1);
      // Learned per model: every task type and complexity of proxy-a is hit.
      expect(estimateOf(stats, 'proxy-a', 'extraction', 'high').availability).toBeCloseTo(a.availability, 6);
      const b = estimateOf(stats, 'proxy-b', 'extraction', 'low');
      expect(b.availability).toBe(1);
      expect(b.latency_ms).toBeCloseTo((1000 * 2 + 200) / 3, 0);
      // The inbox stored it once, whatever the redeliveries.
      expect(
        Number(
          (
            await blocks.platform.db.query<{ n: string }>(
              `SELECT count(*) AS n FROM inbox WHERE event_id = $1 AND consumer = 'ai-learning-proxy-outcomes'`,
              [eventId],
            )
          ).rows[0]?.n,
        ),
      ).toBe(1);

      // Feedback on a proxied decision is about the model that served it.
      const res = await client.feedback({ decision_id: decisionId, success: true, quality_score: 1 });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ model: 'proxy-b', task_type: 'extraction', complexity: 'low', confidence: 0.9 });
    });

    it('learns nothing from cached answers, rate limits or its own bad requests', async () => {
      const decisionId = randomUUID();
      await emitCallEvent(blocks, {
        decisionId,
        model: 'proxy-b',
        taskType: 'extraction',
        complexity: 'medium',
        cached: true,
        attempts: [{ model: 'proxy-b', outcome: 'success', kind: null, latency_ms: 1 }],
      });
      const limited = randomUUID();
      await emitCallEvent(blocks, {
        decisionId: limited,
        model: 'proxy-b',
        taskType: 'extraction',
        complexity: 'medium',
        failed: true,
        attempts: [
          { model: 'proxy-b', outcome: 'PROVIDER_RATE_LIMITED', kind: 'rate_limited', latency_ms: 5 },
          { model: 'proxy-b', outcome: 'PROVIDER_BAD_REQUEST', kind: 'client', latency_ms: 5 },
        ],
      });
      const rows = await eventually(
        () => outcomeRows(limited),
        (r) => r.length === 1,
      );
      expect(rows).toEqual([{ source: 'proxy', model: 'proxy-b', success: null }]);
      expect(await outcomeRows(decisionId)).toEqual([]);
      const b = estimateOf((await client.stats()).body, 'proxy-b', 'extraction', 'medium');
      expect(b.availability).toBe(1);
      expect(b.latency_ms).not.toBeCloseTo(1, 0);
    });

    it("reports calibration of the tenant's recorded outcomes: bins, Brier score and expected calibration error", async () => {
      const res = await client.stats('?window=1h&bins=5&source=feedback');
      expect(res.status).toBe(200);
      const { calibration } = res.body;
      const rows = (
        await blocks.platform.db.query<{ confidence: number; success: boolean }>(
          `SELECT confidence, success FROM ai_outcomes WHERE tenant = 'default' AND source = 'feedback'
             AND confidence IS NOT NULL AND success IS NOT NULL`,
        )
      ).rows;
      expect(rows.length).toBeGreaterThan(5);
      expect(calibration.outcomes).toBe(rows.length);
      expect(calibration.source).toBe('feedback');
      const brier = rows.reduce((s, r) => s + (r.confidence - (r.success ? 1 : 0)) ** 2, 0) / rows.length;
      expect(calibration.brier_score).toBeCloseTo(brier, 5);
      expect(calibration.bins).toHaveLength(5);
      expect(calibration.bins.reduce((n, b) => n + b.outcomes, 0)).toBe(rows.length);
      let gap = 0;
      for (const bin of calibration.bins) {
        const inBin = rows.filter((r) => Math.min(Math.floor(r.confidence * 5), 4) === Math.round(bin.from * 5));
        expect(bin.outcomes).toBe(inBin.length);
        if (inBin.length === 0) continue;
        const conf = inBin.reduce((s, r) => s + r.confidence, 0) / inBin.length;
        const rate = inBin.filter((r) => r.success).length / inBin.length;
        expect(bin.mean_confidence).toBeCloseTo(conf, 5);
        expect(bin.success_rate).toBeCloseTo(rate, 5);
        gap += (inBin.length / rows.length) * Math.abs(conf - rate);
      }
      expect(calibration.expected_calibration_error).toBeCloseTo(gap, 5);

      // Another tenant sees only its own outcomes.
      const acme = (await client.stats('?window=1h&source=feedback', 'acme')).body.calibration;
      expect(acme.outcomes).toBe(1);
      const empty = (await client.stats('?window=1h', 'nobody')).body.calibration;
      expect(empty).toMatchObject({ outcomes: 0, brier_score: null, expected_calibration_error: null });
    });

    it.each([
      ['window=forever', 'INVALID_STATS_WINDOW'],
      ['window=91d', 'INVALID_STATS_WINDOW'],
      ['window=0m', 'INVALID_STATS_WINDOW'],
      ['bins=1', 'VALIDATION_FAILED'],
      ['source=other', 'VALIDATION_FAILED'],
      ['admin=1', 'VALIDATION_FAILED'],
    ])('refuses GET /stats?%s with a 400 %s', async (query, code) => {
      const res = await client.stats(`?${query}`);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe(code);
    });

    it('remembers what it learned across a restart (warm-up from recorded outcomes), each tenant its own', async () => {
      const started = Date.now();
      const before: Stats = (await client.stats()).body;
      const tenantB: Stats = (await client.stats('', 'learn-tenant-b')).body;
      const strong = estimateOf(before, 'learn-strong', 'code', 'low');
      expect(strong.outcome_observations).toBeGreaterThan(3.9);
      await blocks.close();
      blocks = await startTestBlocks({ config: environment.config, roles: ['autonomous'] });
      const after: Stats = (await client.stats()).body;
      // Evidence fades with the 10 min half-life: at most this much of it went while the restart took.
      const kept = 2 ** (-(Date.now() - started) / 600_000);
      for (const [model, task, complexity] of [
        ['learn-strong', 'code', 'low'],
        ['learn-strong', 'code', 'high'],
        ['proxy-a', 'extraction', 'low'],
        ['proxy-b', 'extraction', 'low'],
      ] as const) {
        const was = estimateOf(before, model, task, complexity);
        const now = estimateOf(after, model, task, complexity);
        // Only the decay of the seconds the restart took separates them.
        expect(now.observations, `${model}/${task}/${complexity}`).toBeLessThanOrEqual(was.observations + 0.001);
        expect(now.observations, `${model}/${task}/${complexity}`).toBeGreaterThanOrEqual(was.observations * kept - 0.001);
        expect(now.quality, `${model}/${task}/${complexity}`).toBeCloseTo(was.quality, 2);
      }
      // Warm-up gives each tenant back its own evidence, and nobody else's.
      const strongB = estimateOf((await client.stats('', 'learn-tenant-b')).body, 'learn-strong', 'code', 'medium');
      expect(strongB.observations).toBeGreaterThanOrEqual(
        estimateOf(tenantB, 'learn-strong', 'code', 'medium').observations * kept - 0.001,
      );
      expect(strongB.observations).toBeGreaterThan(9);
      expect(estimateOf(after, 'learn-strong', 'code', 'medium').call_observations).toBe(0);
      expect((await client.stats('', 'learn-tenant-never')).body.estimates.filter((e) => e.observations > 0)).toEqual([]);
    }, 60_000);
  });
}
