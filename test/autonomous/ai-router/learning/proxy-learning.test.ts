import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../support/blocks.ts';
import { chatBody, startProxyHarness, type CallEvent, type ProxyHarness } from '../proxy/proxy-harness.ts';

/**
 * Through the real proxy and fake providers: proxied calls record their outcomes, and learning
 * alone (breakers set never to open, no exploration) moves `auto` off a failing model and back
 * once its failures have faded (half-life 2 s here, so the test takes seconds, not minutes).
 */
describe('learning from proxied calls (PGlite, fake providers)', () => {
  let harness: ProxyHarness;
  let n = 0;

  beforeAll(async () => {
    harness = await startProxyHarness({
      aiOverrides: { learning: { prior_strength: 20, half_life: 2000 } },
      overrides: { resilience: { failure_threshold: 1_000_000, recovery_timeout: 300 } },
    });
  }, 60_000);
  afterAll(async () => {
    await harness?.close();
  });

  /** One `auto` chat; the call event it produced. */
  const call = async (): Promise<CallEvent> => {
    const correlationId = `learn-proxy-${++n}`;
    const res = await harness.chat(chatBody('auto'), { headers: { 'x-correlation-id': correlationId } });
    expect(res.status).toBe(200);
    await res.text();
    const [event] = await harness.eventsFor(correlationId);
    if (event === undefined) throw new Error('no call event');
    return event;
  };
  const availabilityOf = async (model: string): Promise<number> => {
    const res = await fetch(`${harness.blocks.urls.autonomous as string}/api/v1/autonomous/ai/stats?model=${model}&task_type=chat`, {
      headers: await harness.credentials.headers(),
    });
    const body = (await res.json()) as { estimates: Array<{ complexity: string; availability: number; call_observations: number }> };
    return body.estimates.find((e) => e.complexity === 'medium')?.availability ?? Number.NaN;
  };

  it('records every proxied call as an outcome of its decision, which feedback can then rate', async () => {
    const event = await call();
    expect(event.payload.attempts[0]?.model).toBe('alpha');
    const decisionId = event.payload.decision_id;
    expect(decisionId).toMatch(/^[0-9a-f-]{36}$/);
    const rows = await eventually(
      async () =>
        (
          await harness.blocks.platform.db.query<{ source: string; model: string; success: boolean; confidence: number | null }>(
            'SELECT source, model, success, confidence FROM ai_outcomes WHERE decision_id = $1',
            [decisionId],
          )
        ).rows,
      (r) => r.length === 1,
    );
    expect(rows).toEqual([{ source: 'proxy', model: 'alpha', success: true, confidence: event.payload.confidence }]);
    const res = await fetch(`${harness.blocks.urls.autonomous as string}/api/v1/autonomous/ai/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await harness.credentials.headers()) },
      body: JSON.stringify({ decision_id: decisionId, success: true, quality_score: 0.9 }),
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ model: 'alpha', task_type: event.payload.task_type });
  });

  it('moves auto off a failing model within a few calls and back after it recovers', async () => {
    harness.fakes['fake-a'].setBehaviour({ kind: 'error', status: 500 });
    const firsts: string[] = [];
    for (let i = 0; i < 10; i++) {
      const availability = await availabilityOf('alpha');
      const event = await call();
      firsts.push(event.payload.attempts[0]?.model ?? '?');
      if (firsts.at(-1) === 'beta') break;
      // The failed attempt reaches the estimates over the bus; wait until it has before calling again.
      await eventually(
        () => availabilityOf('alpha'),
        (a) => a < availability,
      );
    }
    // alpha 0.99 vs beta 0.90: about three failures (availability 20/23 < 0.90/0.99) are enough,
    // one more when the half-life of 2 s has faded the first ones meanwhile.
    expect(firsts.at(-1)).toBe('beta');
    expect(firsts.length).toBeGreaterThanOrEqual(3);
    expect(firsts.length).toBeLessThanOrEqual(6);

    harness.fakes['fake-a'].setBehaviour({ kind: 'answer' });
    const started = Date.now();
    const back = await eventually(
      async () => (await call()).payload.attempts[0]?.model,
      (model) => model === 'alpha',
      15_000,
    );
    expect(back).toBe('alpha');
    // Three failures fade below the two that tip the balance after log2(3/2) ≈ 0.6 half-lives, plus relay time.
    const seconds = (Date.now() - started) / 1000;
    console.info(`auto returned to alpha ${seconds.toFixed(1)} s after it recovered (half-life 2 s)`);
    expect(seconds).toBeLessThan(10);
  }, 60_000);
});
