import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../support/blocks.ts';
import { chatBody, startProxyHarness, type ProxyHarness } from '../proxy/proxy-harness.ts';

interface Problem {
  code?: string;
  requested_usd?: number;
  limit_usd?: number;
  resets_at?: string;
  budget?: Record<string, string>;
}

describe('budgets on /v1/chat/completions (fake providers, PGlite)', () => {
  let harness: ProxyHarness;
  const tenant = 'budgeted';
  const headers = { 'x-blocks-tenant': tenant };
  const body = chatBody('alpha', 'hello there', { max_tokens: 1000 });
  const admin = (method: string, path: string, payload?: unknown) =>
    fetch(`${harness.blocks.urls.autonomous as string}/api/v1/autonomous/ai${path}`, {
      method,
      headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });

  beforeAll(async () => {
    harness = await startProxyHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('refuses with 402 at the limit, and of concurrent calls lets through exactly what fits', async () => {
    expect((await harness.chat(body, { headers })).status).toBe(200); // no budget yet

    expect((await admin('PUT', `/budgets/tenant/${tenant}/day`, { limit_usd: 0.000001 })).status).toBe(201);
    const refused = await harness.chat(body, { headers });
    expect(refused.status).toBe(402);
    const problem = (await refused.json()) as Problem;
    expect(problem).toMatchObject({
      code: 'BUDGET_EXCEEDED',
      limit_usd: 0.000001,
      budget: { scope: 'tenant', subject: tenant, period: 'day' },
    });
    // The hold is the worst case: the prompt plus all of max_tokens at alpha's prices.
    const estimate = problem.requested_usd as number;
    expect(estimate).toBeGreaterThan(1000 * 2e-6);
    expect(Date.parse(problem.resets_at as string)).toBeGreaterThan(Date.now());

    // Room for five worst cases and a half. Slow answers keep every hold in flight at once.
    expect((await admin('PUT', `/budgets/tenant/${tenant}/day`, { limit_usd: 5.5 * estimate })).status).toBe(200);
    harness.setAll({ kind: 'slow', delayMs: 400 });
    const statuses = await Promise.all(Array.from({ length: 12 }, () => harness.chat(body, { headers }).then((res) => res.status)));
    harness.setAll({ kind: 'answer' });
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 402)).toHaveLength(7);

    // Spent is the five calls' real cost (far below their holds); nothing stays held.
    const { rows } = await harness.blocks.platform.db.query<{ cost: string }>(
      `SELECT coalesce(sum((payload->>'cost_usd')::numeric), 0)::text AS cost FROM events
       WHERE event_type = 'ai.request.completed' AND payload->>'tenant' = $1`,
      [tenant],
    );
    const spentByEvents = Number(rows[0]?.cost);
    const list = (await (await admin('GET', '/budgets')).json()) as { items: Array<{ spent_usd: number; held_usd: number }> };
    expect(list.items[0]?.held_usd).toBe(0);
    // The first call ran before the budget existed, so its cost is in the events but not in the budget.
    expect(list.items[0]?.spent_usd).toBeCloseTo((spentByEvents * 5) / 6, 8);

    // /usage counts every call of the tenant, refused ones as failures.
    const today = new Date().toISOString().slice(0, 10);
    const usage = await eventually(
      async () =>
        (await (await admin('GET', `/usage?from=${today}&to=${today}&group_by=`)).json()) as {
          totals: { requests: number; failures: number; cost_usd: number };
        },
      (u) => u.totals.requests === 14,
    );
    expect(usage.totals).toMatchObject({ requests: 14, failures: 8 });
    expect(usage.totals.cost_usd).toBeCloseTo(spentByEvents, 8);

    const metrics = await (await fetch(`${harness.blocks.urls.autonomous as string}/metrics`)).text();
    expect(metrics).toMatch(/^blocks_ai_budget_refusals_total\{[^}]*scope="tenant"[^}]*period="day"[^}]*\} 8$/m);
  });
});
