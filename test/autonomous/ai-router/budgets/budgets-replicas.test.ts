import { afterEach, beforeEach, expect, it } from 'vitest';
import { createBudgets, type Budgets } from '../../../../src/autonomous/ai-router/budgets/index.ts';
import { createMemoryBus } from '../../../../src/platform/bus/memory.ts';
import type { EventBus } from '../../../../src/platform/bus/port.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import { createOutboxRelay, type OutboxRelay } from '../../../../src/platform/events/relay.ts';
import { createLogger } from '../../../../src/platform/logger.ts';
import { createMetrics } from '../../../../src/platform/telemetry/metrics.ts';
import { eventually, testConfig } from '../../../support/blocks.ts';
import { forEachDatabase } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';
import { countingDatabase, manualClock, spendOf } from './support.ts';
import { AI_CONFIG_SECTION } from '../../../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../../../src/platform/config/section.ts';

const postgres = await probeService('postgres');
const config = testConfig();
const quiet = createLogger({ level: 'silent', service: 'test', version: 'test' });

forEachDatabase(postgres, (fixture) => {
  let bus: EventBus;
  const relays: OutboxRelay[] = [];
  const started: Budgets[] = [];

  /** One replica of the module: its own platform objects over the shared database and bus. */
  const startReplica = async (db: Database, clock = manualClock(new Date().toISOString()), holdTtl?: number): Promise<Budgets> => {
    const relay = createOutboxRelay({ db, bus, exclusive: false });
    relay.start();
    relays.push(relay);
    const settings = holdTtl === undefined ? config : testConfig({}, { ai: { budgets: { hold_ttl: holdTtl } } });
    const budgets = createBudgets(
      { db, bus, clock, logger: quiet, metrics: createMetrics(), relay, config: settings },
      sectionOf(settings, AI_CONFIG_SECTION),
    );
    await budgets.start();
    started.push(budgets);
    return budgets;
  };

  beforeEach(async () => {
    await fixture.db().query('TRUNCATE ai_budgets, ai_budget_spend, ai_budget_holds');
    bus = createMemoryBus();
  });
  afterEach(async () => {
    for (const budgets of started.splice(0)) await budgets.stop();
    for (const relay of relays.splice(0)) await relay.stop();
    await bus.close();
  });

  it('a budget set on one replica limits callers on another once ai.budget.changed arrives, and a deletion frees them', async () => {
    const a = await startReplica(fixture.db());
    const b = await startReplica(await fixture.anotherHandle());
    const caller = { tenant: 'acme', apiKeyId: null };
    const context = { correlationId: 'test' };
    await b.guard.reserve(caller, 5); // no budget yet

    await a.store.put({ tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day' }, 1, Date.now(), context);
    const refused = await eventually(
      () =>
        b.guard.reserve(caller, 5).then(
          () => 'held',
          (error: unknown) => (error as { code?: string }).code,
        ),
      (outcome) => outcome === 'BUDGET_EXCEEDED',
    );
    expect(refused).toBe('BUDGET_EXCEEDED');

    await a.store.remove({ tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day' }, context);
    // Free at once, even before b hears of it: the budget is read in the reserving transaction.
    await (await b.guard.reserve(caller, 5)).settle(5);
  });

  it('loads existing budgets at start, and then costs callers under no budget no database work', async () => {
    const a = await startReplica(fixture.db());
    await a.store.put({ tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'month' }, 1, Date.now(), { correlationId: 'test' });

    const counted = countingDatabase(await fixture.anotherHandle());
    const b = await startReplica(counted.db);
    await expect(b.guard.reserve({ tenant: 'acme', apiKeyId: null }, 2)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', status: 402 });

    const before = counted.count();
    const holds = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        b.guard.reserve({ tenant: `free-${i % 7}`, apiKeyId: '00000000-0000-4000-8000-000000000001' }, 1),
      ),
    );
    await Promise.all(holds.map((hold) => hold.settle(1)));
    expect(counted.count()).toBe(before);
  });

  it("sweeps a dead caller's holds back on its own, without waiting for a refusal", async () => {
    const clock = manualClock(new Date().toISOString());
    const a = await startReplica(fixture.db(), clock, 1_000);
    const key = { tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day' } as const;
    await a.store.put(key, 1, clock.now(), { correlationId: 'test' });
    await a.guard.reserve({ tenant: 'acme', apiKeyId: null }, 0.7); // never settled
    const today = new Date(clock.now()).toISOString().slice(0, 10);
    expect(await spendOf(fixture.db(), key, today)).toEqual({ spent: 0, held: 0.7 });

    clock.advance(1_001);
    const after = await eventually(
      () => spendOf(fixture.db(), key, today),
      (row) => row.held === 0,
    );
    expect(after).toEqual({ spent: 0, held: 0 });
  });
});
