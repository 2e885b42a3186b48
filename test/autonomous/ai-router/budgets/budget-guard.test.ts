import { beforeEach, describe, expect, it } from 'vitest';
import { createTestPglite, forEachDatabase } from '../../../support/databases.ts';
import { probeService, uniqueName } from '../../../support/services.ts';
import { BlocksError } from '../../../../src/platform/errors.ts';
import type { Tenancy } from '../../../../src/platform/http/caller.ts';
import type { BudgetHold } from '../../../../src/autonomous/ai-router/budgets/budget-guard.ts';
import type { BudgetKey } from '../../../../src/autonomous/ai-router/budgets/periods.ts';
import { retryAfterSeconds } from '../../../../src/autonomous/ai-router/budgets/errors.ts';
import { countingDatabase, manualClock, replica, spendOf } from './support.ts';

const postgres = await probeService('postgres');

const refusal = async (promise: Promise<unknown>): Promise<BlocksError> => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BlocksError);
  return error as BlocksError;
};

forEachDatabase(postgres, (fixture) => {
  let tenant: string;
  let caller: Tenancy;
  let tenantDay: BudgetKey;
  // Identity API key ids, as request.caller.apiKeyId carries them.
  const keyId = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

  beforeEach(async () => {
    await fixture.db().query('TRUNCATE ai_budgets, ai_budget_spend, ai_budget_holds');
    tenant = uniqueName('t').toLowerCase();
    caller = { tenant, apiKeyId: null };
    tenantDay = { tenant, scope: 'tenant', subject: tenant, period: 'day' };
  });

  it('holds the estimate, settles the real cost into spent and releases a failed call', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(fixture.db(), clock);
    await r.put(tenantDay, 1);

    const first = await r.guard.reserve(caller, 0.3);
    const second = await r.guard.reserve(caller, 0.2);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0.5 });

    await first.settle(0.25);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0.25, held: 0.2 });
    await second.release();
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0.25, held: 0 });

    // Settle and release are idempotent, also when called together or one after the other.
    await Promise.all([first.settle(0.25), first.settle(0.25), first.release()]);
    await second.settle(0.5);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0.25, held: 0 });
    const { rows } = await fixture.db().query('SELECT * FROM ai_budget_holds WHERE tenant = $1', [tenant]);
    expect(rows).toEqual([]);
  });

  it('charges a real cost above the estimate in full, then refuses the next call', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(fixture.db(), clock);
    await r.put(tenantDay, 1);
    const hold = await r.guard.reserve(caller, 0.5);
    await hold.settle(1.2); // no max_tokens: the answer ran long
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 1.2, held: 0 });
    const error = await refusal(r.guard.reserve(caller, 0));
    expect(error.code).toBe('BUDGET_EXCEEDED');
  });

  it('refuses with 402 naming the budget, its limit, spent, held and when it resets', async () => {
    const clock = manualClock('2026-11-25T23:59:30Z');
    const r = replica(fixture.db(), clock);
    await r.put(tenantDay, 1);
    await (await r.guard.reserve(caller, 0.6)).settle(0.6);
    await r.guard.reserve(caller, 0.3);

    const error = await refusal(r.guard.reserve(caller, 0.2));
    expect(error.status).toBe(402);
    expect(error.code).toBe('BUDGET_EXCEEDED');
    expect(error.extensions).toEqual({
      budget: { scope: 'tenant', subject: tenant, period: 'day' },
      limit_usd: 1,
      spent_usd: 0.6,
      held_usd: 0.3,
      requested_usd: 0.2,
      resets_at: '2026-11-26T00:00:00.000Z',
      retry_after: 30,
    });
    expect(retryAfterSeconds(error)).toBe(30);
    expect(error.detail).toContain(`tenant '${tenant}'`);
    // What did fit still fits: the refusal held nothing.
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0.6, held: 0.3 });
    await r.guard.reserve(caller, 0.1);
  });

  it('starts a new day at 00:00 UTC and a new month on the 1st, charging a late settle to the period it was held in', async () => {
    const clock = manualClock('2026-11-30T23:59:59Z');
    const r = replica(fixture.db(), clock);
    const tenantMonth: BudgetKey = { ...tenantDay, period: 'month' };
    await r.put(tenantDay, 1);
    await r.put(tenantMonth, 1.5);

    const late = await r.guard.reserve(caller, 1);
    expect((await refusal(r.guard.reserve(caller, 0.01))).extensions.budget).toEqual({ scope: 'tenant', subject: tenant, period: 'day' });

    clock.advance(2_000); // 2026-12-01T00:00:01Z: both periods are new
    await late.settle(1);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-30')).toEqual({ spent: 1, held: 0 });
    expect(await spendOf(fixture.db(), tenantMonth, '2026-11-01')).toEqual({ spent: 1, held: 0 });
    await (await r.guard.reserve(caller, 1)).settle(1);
    expect(await spendOf(fixture.db(), tenantDay, '2026-12-01')).toEqual({ spent: 1, held: 0 });
    expect(await spendOf(fixture.db(), tenantMonth, '2026-12-01')).toEqual({ spent: 1, held: 0 });

    // Next day: the daily budget is fresh, the monthly one is not.
    clock.set('2026-12-02T08:00:00Z');
    const monthly = await refusal(r.guard.reserve(caller, 0.6));
    expect(monthly.extensions).toMatchObject({
      budget: { scope: 'tenant', period: 'month' },
      limit_usd: 1.5,
      spent_usd: 1,
      resets_at: '2027-01-01T00:00:00.000Z',
      retry_after: 30 * 86_400 - 8 * 3600,
    });
    await r.guard.reserve(caller, 0.5);
  });

  it('holds on the tenant and the API key budgets all or nothing', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(fixture.db(), clock);
    const keyDay: BudgetKey = { tenant, scope: 'api_key', subject: keyId, period: 'day' };
    const keyMonth: BudgetKey = { ...keyDay, period: 'month' };
    await r.put(tenantDay, 1);
    await r.put(keyDay, 0.1);
    await r.put(keyMonth, 5);
    const withKey: Tenancy = { tenant, apiKeyId: keyId };

    await r.guard.reserve(withKey, 0.08);
    const error = await refusal(r.guard.reserve(withKey, 0.08));
    expect(error.extensions.budget).toEqual({ scope: 'api_key', subject: keyId, period: 'day' });
    expect(error.detail).toContain(`API key ${keyId} of tenant '${tenant}'`);
    // The key's daily budget refused, so neither the key's monthly nor the tenant's budget kept a hold.
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0.08 });
    expect(await spendOf(fixture.db(), keyMonth, '2026-11-01')).toEqual({ spent: 0, held: 0.08 });

    // Without the key (or with another key) only the tenant's budget applies.
    await r.guard.reserve(caller, 0.5);
    await r.guard.reserve({ tenant, apiKeyId: 'ffffffff-ffff-4fff-bfff-ffffffffffff' }, 0.41);
    // 0.019 fits the key's day (0.099 of 0.10) but not the tenant's (1.009 of 1.00).
    const tenantFull = await refusal(r.guard.reserve(withKey, 0.019));
    expect(tenantFull.extensions.budget).toEqual({ scope: 'tenant', subject: tenant, period: 'day' });
    // Another tenant is not limited at all.
    await r.guard.reserve({ tenant: `${tenant}x`, apiKeyId: keyId }, 100);
  });

  it('a zero limit refuses every call, and an exhausted budget refuses even a zero estimate', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(fixture.db(), clock);
    await r.put(tenantDay, 0);
    expect((await refusal(r.guard.reserve(caller, 0))).code).toBe('BUDGET_EXCEEDED');
    await r.put(tenantDay, 0.5);
    await r.guard.reserve(caller, 0.5);
    expect((await refusal(r.guard.reserve(caller, 0))).code).toBe('BUDGET_EXCEEDED');
    await expect(r.guard.reserve(caller, -1)).rejects.toThrow(RangeError);
    await expect(r.guard.reserve(caller, Number.NaN)).rejects.toThrow(RangeError);
  });

  it('50 concurrent reservations of $0.03 against $1.00: exactly 33 hold, and spent + held never passes the limit', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    // Two replicas (two connection pools on PostgreSQL) race on the same budget.
    const a = replica(fixture.db(), clock);
    const b = replica(await fixture.anotherHandle(), clock);
    await a.put(tenantDay, 1);
    await b.reload();

    let racing = true;
    let highest = 0;
    const watcher = (async () => {
      const observer = await fixture.anotherHandle();
      while (racing) {
        const { spent, held } = await spendOf(observer, tenantDay, '2026-11-25');
        highest = Math.max(highest, spent + held);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).guard.reserve(caller, 0.03)));
    racing = false;
    await watcher;

    const held = results.filter((r): r is PromiseFulfilledResult<BudgetHold> => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(held).toHaveLength(33);
    expect(refused.every((r) => (r.reason as BlocksError).code === 'BUDGET_EXCEEDED')).toBe(true);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0.99 });
    expect(highest).toBeLessThanOrEqual(1);

    await Promise.all(held.map((r) => r.value.settle(0.03)));
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0.99, held: 0 });
  });

  it('gives back the hold of a call that never settled once hold_ttl has passed, at reserve time and by the sweep', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(fixture.db(), clock, 60_000);
    await r.put(tenantDay, 1);
    // This call's process "dies": its hold is never settled nor released.
    const orphan = await r.guard.reserve(caller, 0.9);
    await expect(r.guard.reserve(caller, 0.2)).rejects.toThrow(BlocksError);

    clock.advance(59_000);
    expect(await r.guard.releaseExpired()).toBe(0);
    expect((await refusal(r.guard.reserve(caller, 0.2))).extensions.held_usd).toBe(0.9);

    clock.advance(1_000); // expires_at reached: the refused reservation releases it and retries
    const fresh = await r.guard.reserve(caller, 0.2);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0.2 });

    // The sweep releases whatever else expired, on any budget.
    clock.advance(60_000);
    expect(await r.guard.releaseExpired()).toBe(1);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0 });
    await fresh.settle(0.2); // a late settle still charges, without taking held below zero

    // A process that did not die after all and settles late is charged; nothing is released twice.
    await orphan.settle(0.9);
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 1.1, held: 0 });
  });

  it('uses the limit in the database, and lets calls through once a budget is deleted, even on a replica that has not heard yet', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const a = replica(fixture.db(), clock);
    const stale = replica(await fixture.anotherHandle(), clock);
    await a.put(tenantDay, 1);
    await stale.reload();

    await a.put(tenantDay, 0.1); // stale still holds its old list, but the limit is read in the transaction
    expect((await refusal(stale.guard.reserve(caller, 0.2))).extensions.limit_usd).toBe(0.1);

    await a.store.remove(tenantDay, { correlationId: 'test' });
    expect(stale.index.applicable(caller)).toHaveLength(1);
    const hold = await stale.guard.reserve(caller, 5);
    await hold.settle(5); // nothing was held, so nothing is charged
    expect(await spendOf(fixture.db(), tenantDay, '2026-11-25')).toEqual({ spent: 0, held: 0 });
  });

  it('does no I/O at all for a caller under no budget', async () => {
    const clock = manualClock('2026-11-25T12:00:00Z');
    const counted = countingDatabase(fixture.db());
    const r = replica(counted.db, clock);
    await r.put(tenantDay, 1);
    const before = counted.count();

    const other: Tenancy = { tenant: `${tenant}x`, apiKeyId: keyId };
    const holds = await Promise.all(Array.from({ length: 100 }, () => r.guard.reserve(other, 1)));
    await Promise.all(holds.map((hold, i) => (i % 2 === 0 ? hold.settle(1) : hold.release())));
    expect(counted.count()).toBe(before);

    // The counter does see the queries of a caller that has a budget.
    await (await r.guard.reserve(caller, 0.1)).settle(0.1);
    expect(counted.count()).toBeGreaterThan(before);
  });
});

describe('budget guard without a database', () => {
  it('keeps serving callers under no budget after the database has closed, and fails those under one', async () => {
    const db = await createTestPglite();
    const clock = manualClock('2026-11-25T12:00:00Z');
    const r = replica(db, clock);
    await r.put({ tenant: 'capped', scope: 'tenant', subject: 'capped', period: 'day' }, 1);
    await db.close();

    const hold = await r.guard.reserve({ tenant: 'free', apiKeyId: null }, 3);
    await hold.settle(3);
    await expect(r.guard.reserve({ tenant: 'capped', apiKeyId: null }, 0.1)).rejects.toThrow();
  });
});
