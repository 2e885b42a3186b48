import { beforeEach, expect, it } from 'vitest';
import { countDecisions, listModelUsage } from '../../../src/core/analytics/store.ts';
import { probeService } from '../../support/services.ts';
import { forEachDatabase } from '../../support/databases.ts';

const postgres = await probeService('postgres');
const at = '2026-11-25T10:00:00.000Z';
const decision = (id: string, model: string, cost: number) => ({ event_id: id, model, estimated_cost: cost, decided_at: at });

forEachDatabase(postgres, (fixture) => {
  beforeEach(async () => {
    await fixture.db().query('TRUNCATE analytics_model_usage');
  });

  it('adds a batch to the per-model totals and reports what it counted', async () => {
    const db = fixture.db();
    const fresh = await countDecisions(db, 'usage', [decision('e1', 'a', 0.5), decision('e2', 'a', 0.25), decision('e3', 'b', 1)]);
    expect([...fresh].sort()).toEqual(['e1', 'e2', 'e3']);
    expect(await listModelUsage(db)).toEqual([
      { model: 'a', decisions: 2, estimated_cost_usd: 0.75 },
      { model: 'b', decisions: 1, estimated_cost_usd: 1 },
    ]);
  });

  it('counts a redelivered event, or one repeated inside a batch, once', async () => {
    const db = fixture.db();
    await countDecisions(db, 'usage', [decision('e1', 'a', 0.5)]);
    const fresh = await countDecisions(db, 'usage', [decision('e1', 'a', 0.5), decision('e2', 'a', 0.5), decision('e2', 'a', 0.5)]);
    expect([...fresh]).toEqual(['e2']);
    expect(await listModelUsage(db)).toEqual([{ model: 'a', decisions: 2, estimated_cost_usd: 1 }]);
  });

  it('keeps inboxes of different consumers apart', async () => {
    const db = fixture.db();
    await countDecisions(db, 'one', [decision('e1', 'a', 0.5)]);
    expect([...(await countDecisions(db, 'two', [decision('e1', 'a', 0.5)]))]).toEqual(['e1']);
  });

  it('writes nothing when the batch fails', async () => {
    const db = fixture.db();
    await expect(
      countDecisions(db, 'usage', [decision('e1', 'a', 0.5), { ...decision('e2', 'a', 0.5), decided_at: 'not a time' }]),
    ).rejects.toThrow();
    expect(await listModelUsage(db)).toEqual([]);
    expect([...(await countDecisions(db, 'usage', [decision('e1', 'a', 0.5)]))]).toEqual(['e1']);
  });
});
