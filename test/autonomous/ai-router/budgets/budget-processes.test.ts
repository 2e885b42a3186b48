import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../../../../src/platform/db/postgres.ts';
import { runMigrations } from '../../../../src/platform/db/migrate.ts';
import type { Database } from '../../../../src/platform/db/port.ts';
import type { BudgetKey } from '../../../../src/autonomous/ai-router/budgets/periods.ts';
import { createTestDatabase, type TestDatabase } from '../../../support/postgres.ts';
import { probeService } from '../../../support/services.ts';
import { manualClock, replica, spendOf } from './support.ts';
import { MIGRATIONS } from '../../../support/registry.ts';

const postgres = await probeService('postgres');
const WORKER = fileURLToPath(new URL('./fixtures/reserve-worker.ts', import.meta.url));
const HOLD_TTL_MS = 60_000;

interface WorkerResult {
  held: number;
  refused: number;
  codes: string[];
}

function startWorker(env: Record<string, string>): { child: ChildProcess; result: Promise<WorkerResult>; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [WORKER], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => stderr.push(line));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const result = new Promise<WorkerResult>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => resolve(JSON.parse(line) as WorkerResult));
    void exited.then((code) => reject(new Error(`worker exited with ${String(code)}:\n${stderr.join('\n')}`)));
  });
  return { child, result, exited };
}

describe.skipIf(!postgres.ok)('budget guard across two processes on one PostgreSQL', () => {
  let testDb: TestDatabase;
  let db: Database;
  const tenant = 'racers';
  const budget: BudgetKey = { tenant, scope: 'tenant', subject: tenant, period: 'day' };

  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = await createPostgresDatabase({ url: testDb.url, poolMax: 4 });
    await runMigrations(db, MIGRATIONS);
  });
  afterAll(async () => {
    await db?.close();
    await testDb?.drop();
  });

  it('two processes firing 25 reservations of $0.03 each at a $1.00 budget get exactly 33 between them; their holds come back after hold_ttl once they are killed', async () => {
    const clock = manualClock(new Date().toISOString());
    const parent = replica(db, clock, HOLD_TTL_MS);
    await parent.put(budget, 1);
    const today = new Date(clock.now()).toISOString().slice(0, 10);

    const env = {
      DATABASE_URL: testDb.url,
      TENANT: tenant,
      COUNT: '25',
      AMOUNT: '0.03',
      HOLD_TTL_MS: String(HOLD_TTL_MS),
      START_AT: String(Date.now() + 2_500),
    };
    const workers = [startWorker(env), startWorker(env)];

    let racing = true;
    let highest = 0;
    let samples = 0;
    const watcher = (async () => {
      while (racing) {
        const { spent, held } = await spendOf(db, budget, today);
        highest = Math.max(highest, spent + held);
        samples += 1;
      }
    })();
    try {
      const results = await Promise.all(workers.map((w) => w.result));
      racing = false;
      await watcher;

      expect(results.flatMap((r) => r.codes).filter((c) => c !== 'held' && c !== 'BUDGET_EXCEEDED')).toEqual([]);
      expect(results.reduce((n, r) => n + r.held, 0)).toBe(33);
      expect(results.reduce((n, r) => n + r.refused, 0)).toBe(17);
      // Both processes won some: the race really was between them.
      expect(results.every((r) => r.held > 0)).toBe(true);
      expect(await spendOf(db, budget, today)).toEqual({ spent: 0, held: 0.99 });
      expect(highest).toBeLessThanOrEqual(1);
      expect(samples).toBeGreaterThan(1);
    } finally {
      racing = false;
      for (const w of workers) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
    }

    // Both processes died holding $0.99 they will never settle.
    await expect(parent.guard.reserve({ tenant, apiKeyId: null }, 0.02)).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
    clock.advance(HOLD_TTL_MS + 5_000);
    expect(await parent.guard.releaseExpired()).toBe(33);
    expect(await spendOf(db, budget, today)).toEqual({ spent: 0, held: 0 });
    await (await parent.guard.reserve({ tenant, apiKeyId: null }, 1)).settle(1);
    expect(await spendOf(db, budget, today)).toEqual({ spent: 1, held: 0 });
  });
});
