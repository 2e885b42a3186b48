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
  const body = chatBody('alpha', 'hello there', { max_tokens: 1000 });
  /** The budgets and usage API, with a key of `as` ('budgeted') that may manage budgets and read usage but not call models. */
  const admin = async (method: string, path: string, payload?: unknown, as = tenant) =>
    fetch(`${harness.blocks.urls.autonomous as string}/api/v1/autonomous/ai${path}`, {
      method,
      headers: {
        ...(await harness.credentials.headers(as, ['ai:budgets', 'ai:read'])),
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });

  beforeAll(async () => {
    harness = await startProxyHarness();
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('refuses with 402 at the limit, and of concurrent calls lets through exactly what fits', async () => {
    expect((await harness.chat(body, { tenant })).status).toBe(200); // no budget yet

    expect((await admin('PUT', `/budgets/tenant/${tenant}/day`, { limit_usd: 0.000001 })).status).toBe(201);
    const refused = await harness.chat(body, { tenant });
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
    const statuses = await Promise.all(Array.from({ length: 12 }, () => harness.chat(body, { tenant }).then((res) => res.status)));
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

  it('a per-key budget refuses that identity key, not another key of the same tenant, and usage tells the keys apart', async () => {
    const team = 'keyed';
    const capped = { tenant: team, scopes: ['ai:invoke'] };
    const free = { tenant: team, scopes: ['ai:invoke', 'ai:read'] };
    const cappedId = await harness.credentials.keyId(team, capped.scopes);
    const freeId = await harness.credentials.keyId(team, free.scopes);
    expect(cappedId).not.toBe(freeId);

    // Capping a key the tenant has seen no call from is refused; its first call makes it known.
    expect((await admin('PUT', `/budgets/api_key/${cappedId}/day`, { limit_usd: 0 }, team)).status).toBe(404);
    expect((await harness.chat(body, capped)).status).toBe(200);
    const put = await eventually(
      async () => (await admin('PUT', `/budgets/api_key/${cappedId}/day`, { limit_usd: 0 }, team)).status,
      (status) => status === 201,
    );
    expect(put).toBe(201);

    const refused = await harness.chat(body, capped);
    expect(refused.status).toBe(402);
    expect((await refused.json()) as Problem).toMatchObject({
      code: 'BUDGET_EXCEEDED',
      limit_usd: 0,
      budget: { scope: 'api_key', subject: cappedId, period: 'day' },
    });
    expect((await harness.chat(body, free)).status).toBe(200);

    const today = new Date().toISOString().slice(0, 10);
    const usage = await eventually(
      async () =>
        (await (await admin('GET', `/usage?from=${today}&to=${today}&group_by=api_key`, undefined, team)).json()) as {
          items: Array<{ api_key_id: string | null; requests: number; failures: number }>;
        },
      (u) => u.items.reduce((sum, item) => sum + item.requests, 0) === 3,
    );
    expect(usage.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ api_key_id: cappedId, requests: 2, failures: 1 }),
        expect.objectContaining({ api_key_id: freeId, requests: 1, failures: 0 }),
      ]),
    );
    expect(usage.items).toHaveLength(2);
  });
});
