import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import type { Config } from '../../../../src/platform/config/schema.ts';
import { eventually, startTestBlocks, testConfig } from '../../../support/blocks.ts';
import { testCredentials } from '../../../support/credentials.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../../support/real-services.ts';
import { clientOf, emitCallEvent, estimateOf, learningOverrides, writeLearningCatalog } from './learning.fixtures.ts';

const available = await probeRealServices();

describe.skipIf(!available)('AI learning across replicas (PostgreSQL, NATS)', () => {
  let services: RealServicesEnv;
  let catalog: { path: string; remove(): void };
  let config: Config;
  let a: RunningBlocks;
  let b: RunningBlocks;
  const late: RunningBlocks[] = [];
  // Keys made through replica a's identity module: the replicas share the database, so b and c take them too.
  const creds = testCredentials({
    get identity() {
      return a.identity;
    },
  });
  const credentialsOf = (tenant: string) => creds.headers(tenant);
  const onA = clientOf(() => a.urls.autonomous as string, credentialsOf);
  const onB = clientOf(() => b.urls.autonomous as string, credentialsOf);

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    catalog = writeLearningCatalog();
    config = testConfig(services.env, learningOverrides(catalog.path));
    const [first, second] = await Promise.allSettled([
      startTestBlocks({ config, roles: ['autonomous'] }),
      startTestBlocks({ config, roles: ['autonomous'] }),
    ]);
    if (first.status === 'rejected' || second.status === 'rejected') {
      // Close the replica that did start, or its connections outlive the database dropped at cleanup.
      await Promise.allSettled([first, second].flatMap((s) => (s.status === 'fulfilled' ? [s.value.close()] : [])));
      throw first.status === 'rejected' ? first.reason : (second as PromiseRejectedResult).reason;
    }
    [a, b] = [first.value, second.value];
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close(), ...late.map((c) => c.close())]);
    await services?.cleanup();
    catalog?.remove();
  });

  it('feedback given to one replica reaches the estimates of the other, and its routing', async () => {
    const first = await onB.route({ task_type: 'code', complexity: 'high', context: { prompt: 'hi' } });
    expect(first.selected_model).toBe('learn-strong');
    for (let i = 0; i < 6; i++) {
      const decision = await onA.route({
        task_type: 'code',
        complexity: 'high',
        preferred_model: 'learn-strong',
        context: { prompt: 'hi' },
      });
      expect((await onA.feedback({ decision_id: decision.decision_id, success: false })).status).toBe(201);
    }
    const seenByB = await eventually(
      async () => estimateOf((await onB.stats()).body, 'learn-strong', 'code', 'high'),
      (e) => e.outcome_observations > 5.9,
      15_000,
    );
    // (0.9 × 20) / (20 + 6), give or take a few seconds of decay.
    expect(seenByB.answer_quality).toBeCloseTo(18 / 26, 3);
    const seenByA = estimateOf((await onA.stats()).body, 'learn-strong', 'code', 'high');
    expect(seenByA.answer_quality).toBeCloseTo(seenByB.answer_quality, 3);
    const again = await onB.route({ task_type: 'code', complexity: 'high', context: { prompt: 'hi' } });
    expect(again.selected_model).toBe('learn-backup');
  });

  it('every replica learns from proxied calls, and the outcome table gets each call once', async () => {
    const events = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        emitCallEvent(i % 2 === 0 ? a : b, {
          decisionId: null,
          model: 'proxy-a',
          taskType: 'extraction',
          complexity: 'medium',
          attempts: [{ model: 'proxy-a', outcome: 'PROVIDER_TIMEOUT', kind: 'timeout', latency_ms: 1000 }],
          failed: true,
        }),
      ),
    );
    const requestIds = events.map((e) => e.requestId);
    const stored = async (): Promise<number> =>
      Number(
        (await a.platform.db.query<{ n: string }>('SELECT count(*) AS n FROM ai_outcomes WHERE request_id = ANY($1::uuid[])', [requestIds]))
          .rows[0]?.n,
      );
    expect(await eventually(stored, (n) => n >= 20, 15_000)).toBe(20);
    for (const client of [onA, onB]) {
      const e = await eventually(
        async () => estimateOf((await client.stats()).body, 'proxy-a', 'extraction', 'medium'),
        (x) => x.call_observations > 19.9,
        15_000,
      );
      expect(e.availability).toBeCloseTo(20 / 40, 3);
    }
    // A moment later nothing more arrived: each call counted once per replica, stored once in all.
    await new Promise((r) => setTimeout(r, 300));
    expect(await stored()).toBe(20);
    expect(estimateOf((await onA.stats()).body, 'proxy-a', 'extraction', 'medium').call_observations).toBeLessThan(20.01);
  });

  it('a key revoked through one replica is refused by the other, which had accepted it', async () => {
    const made = await a.identity.apiKeys.create(
      'default',
      { name: 'revoked', scopes: ['ai:route'], expiresAt: null },
      { correlationId: 'replica-revoke' },
    );
    const routeOnB = async () => {
      const res = await fetch(`${b.urls.autonomous as string}/api/v1/autonomous/ai/route`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': made.key },
        body: JSON.stringify({ task_type: 'code', complexity: 'low', context: { prompt: 'hi' } }),
      });
      return { status: res.status, body: (await res.json()) as { code?: string } };
    };
    // Accepted (and so cached) by b before the revocation.
    expect((await routeOnB()).status).toBe(200);
    await a.identity.apiKeys.revoke('default', made.id, { correlationId: 'replica-revoke' });
    // b learns of it from identity.api_key.revoked, well before its cache entry would expire (60 s).
    const refused = await eventually(routeOnB, (res) => res.status === 401, 15_000);
    expect(refused).toMatchObject({ status: 401, body: { code: 'INVALID_CREDENTIALS' } });
  });

  it('a replica started later knows what the others learned', async () => {
    const c = await startTestBlocks({ config, roles: ['autonomous'] });
    late.push(c);
    const onC = clientOf(() => c.urls.autonomous as string, credentialsOf);
    const fromA = (await onA.stats()).body;
    const fromC = (await onC.stats()).body;
    for (const [model, task, complexity] of [
      ['learn-strong', 'code', 'high'],
      ['proxy-a', 'extraction', 'medium'],
    ] as const) {
      expect(estimateOf(fromC, model, task, complexity).quality).toBeCloseTo(estimateOf(fromA, model, task, complexity).quality, 3);
    }
    expect((await onC.route({ task_type: 'code', complexity: 'high', context: { prompt: 'hi' } })).selected_model).toBe('learn-backup');
  }, 60_000);
});
