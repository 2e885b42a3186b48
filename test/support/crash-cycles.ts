import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { stringify as toYaml } from 'yaml';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import type { Queryable } from '../../src/platform/db/port.ts';
import { USAGE_CONSUMER } from '../../src/autonomous/ai-router/budgets/usage-counter.ts';
import { PROXY_OUTCOMES_CONSUMER } from '../../src/autonomous/ai-router/learning/consumers.ts';
import { tempDir } from './blocks.ts';
import { catalogModel } from './catalog-model.ts';
import { firstStartKey, spawnBlocks, type BlocksProcess } from './blocks-process.ts';
import { startFakeOpenAi } from './fake-providers/index.ts';
import { parseExposition } from './prometheus.ts';

/** What a run of kill -9 cycles answered, stored and counted. */
export interface CrashCounts {
  /** Calls a client got a 200 and a whole answer for. */
  readonly answered: number;
  /** `ai.request.completed` events in the outbox. */
  readonly events: number;
  /** Calls the usage counter counted (`ai_usage_daily.requests`). */
  readonly usage: number;
  /** Proxied calls learning stored (`ai_outcomes` with source `proxy`). */
  readonly outcomes: number;
  /** Kill -9s that hit while calls were being answered. */
  readonly kills: number;
}

export interface CrashCyclesOptions {
  /** Kill -9s, each followed by a restart on the same data. */
  readonly cycles: number;
  /** How long calls run before each kill. */
  readonly loadMs: number;
  /** Calls in flight at once. */
  readonly concurrency: number;
  /** Where Blocks keeps its data: the embedded defaults (a PGlite data directory), or these variables (`DATABASE_URL`, a bus, …). */
  readonly env?: Record<string, string> | undefined;
  /** How long the counters may take to catch up after the last restart. */
  readonly drainTimeoutMs?: number | undefined;
}

/** Lag of the two durable consumers that count calls, and the outbox backlog, from `/metrics` (0 lag is "caught up"). */
async function pending(autonomous: string): Promise<number> {
  const samples = parseExposition(await (await fetch(`${autonomous}/metrics`)).text());
  const value = (name: string, consumer?: string): number => {
    const sample = samples.find((s) => s.name === name && (consumer === undefined || s.labels.consumer === consumer));
    if (sample === undefined) throw new Error(`/metrics has no ${name} ${consumer ?? ''}`);
    return sample.value;
  };
  return (
    value('blocks_outbox_backlog') +
    value('blocks_bus_consumer_lag', USAGE_CONSUMER) +
    value('blocks_bus_consumer_lag', PROXY_OUTCOMES_CONSUMER)
  );
}

async function countStored(db: Queryable): Promise<Omit<CrashCounts, 'answered' | 'kills'>> {
  const one = async (sql: string): Promise<number> => Number((await db.query<{ n: string | number }>(sql)).rows[0]?.n ?? 0);
  return {
    events: await one(`SELECT count(*) AS n FROM events WHERE event_type = 'ai.request.completed'`),
    usage: await one('SELECT coalesce(sum(requests), 0) AS n FROM ai_usage_daily'),
    outcomes: await one(`SELECT count(*) AS n FROM ai_outcomes WHERE source = 'proxy'`),
  };
}

/**
 * Runs `blocks start` (all services, the real CLI) against a fake provider, sends chat calls from
 * `concurrency` callers, and kills the process with SIGKILL while they run, `cycles` times,
 * restarting it on the same data each time. After the last restart it waits until the outbox and
 * the usage and learning consumers have caught up, stops Blocks, and counts what was stored.
 * Nothing answered may be lost: every answered call has its event, and usage and learning count
 * every event once.
 */
export async function runCrashCycles(options: CrashCyclesOptions): Promise<CrashCounts> {
  const dir = tempDir('blocks-crash');
  const fake = await startFakeOpenAi({ kind: 'answer' });
  const catalogFile = join(dir.path, 'models.yaml');
  writeFileSync(catalogFile, toYaml({ models: [catalogModel('alpha', { capabilities: ['streaming'] })] }));
  const env: Record<string, string> = {
    ...options.env,
    BLOCKS_DATA_DIR: join(dir.path, 'data'),
    BLOCKS__ai__catalog_file: catalogFile,
    BLOCKS__ai__providers: JSON.stringify({ fake: { protocol: 'openai', base_url: fake.baseUrl } }),
    // One address sends every call: the limiter must not be what the run measures.
    BLOCKS__rate_limits__tiers: JSON.stringify({ default: { limit: 1_000_000_000, period: '1s', burst: 1_000_000_000 } }),
  };
  let blocks: BlocksProcess | undefined;
  try {
    blocks = await spawnBlocks([], env);
    const key = await firstStartKey(blocks, ['ai:invoke']);
    let answered = 0;
    let kills = 0;
    for (let cycle = 0; cycle < options.cycles; cycle += 1) {
      const running = blocks;
      const url = `${running.urls.autonomous as string}/v1/chat/completions`;
      let stop = false;
      let answeredThisCycle = 0;
      const caller = async (n: number): Promise<void> => {
        for (let i = 0; !stop; i += 1) {
          try {
            const response = await fetch(url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-api-key': key },
              body: JSON.stringify({ model: 'alpha', messages: [{ role: 'user', content: `call ${cycle}.${n}.${i}` }] }),
            });
            const body = (await response.json()) as { choices?: unknown[] };
            if (response.status === 200 && Array.isArray(body.choices)) answeredThisCycle += 1;
          } catch {
            return; // the process is gone: this caller is done for the cycle
          }
        }
      };
      const callers = Array.from({ length: options.concurrency }, (_, n) => caller(n));
      await new Promise((resolve) => setTimeout(resolve, options.loadMs));
      if (answeredThisCycle > 0) kills += 1;
      running.child.kill('SIGKILL');
      await running.exited;
      stop = true;
      await Promise.all(callers);
      answered += answeredThisCycle;
      blocks = await spawnBlocks([], env);
    }
    const autonomous = blocks.urls.autonomous as string;
    const deadline = Date.now() + (options.drainTimeoutMs ?? 60_000);
    while ((await pending(autonomous)) > 0) {
      if (Date.now() > deadline) throw new Error(`usage and learning did not catch up within ${options.drainTimeoutMs ?? 60_000} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    blocks.child.kill('SIGTERM');
    await blocks.exited;
    const databaseUrl = options.env?.DATABASE_URL;
    if (databaseUrl !== undefined) {
      const client = new Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        return { answered, kills, ...(await countStored(client)) };
      } finally {
        await client.end();
      }
    }
    const db = await createPgliteDatabase({ dataDir: join(env.BLOCKS_DATA_DIR as string, 'pglite') });
    try {
      return { answered, kills, ...(await countStored(db)) };
    } finally {
      await db.close();
    }
  } finally {
    if (blocks !== undefined && blocks.child.exitCode === null && blocks.child.signalCode === null) {
      blocks.child.kill('SIGKILL');
      await blocks.exited;
    }
    await fake.close();
    dir.remove();
  }
}
