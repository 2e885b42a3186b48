import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { eventually, startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../support/real-services.ts';

const available = await probeRealServices();

const routeCode = async (blocks: RunningBlocks, creds: TestCredentials): Promise<string | undefined> => {
  const res = await fetch(`${blocks.urls.autonomous}/api/v1/autonomous/ai/route`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await creds.headers()) },
    body: JSON.stringify({ task_type: 'code', complexity: 'high', context: { prompt: 'hi' } }),
  });
  return ((await res.json()) as { selected_model?: string }).selected_model;
};

describe.skipIf(!available)('AI model catalog across two replicas (PostgreSQL, NATS)', () => {
  let services: RealServicesEnv;
  let a: RunningBlocks;
  let b: RunningBlocks;
  // Keys made through replica a: both replicas read them from the one database.
  let creds: TestCredentials;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const config = testConfig(services.env);
    // Started together on an empty table: both try to seed.
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
    creds = testCredentials(a);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await services?.cleanup();
  });

  it('seeds once when replicas start together', async () => {
    const configured = (await a.platform.db.query<{ n: number }>('SELECT count(*)::int AS n FROM ai_models')).rows[0]?.n;
    const versions = await a.platform.db.query<{ version: number }>('SELECT DISTINCT version FROM ai_models');
    expect(configured).toBeGreaterThan(0);
    expect(versions.rows).toEqual([{ version: 1 }]);
  });

  it('a change made on one replica reaches the other through ai.catalog.changed', async () => {
    const before = await routeCode(b, creds);
    const res = await fetch(`${a.urls.autonomous}/api/v1/autonomous/ai/models`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await creds.headers()) },
      body: JSON.stringify({
        model: 'replica-coder',
        provider: 'openai',
        task_types: ['code'],
        context_window: 64000,
        input_price_per_mtok: 0.01,
        output_price_per_mtok: 0.02,
        quality: { code: { low: 0.999, medium: 0.999, high: 0.999 } },
      }),
    });
    expect(res.status).toBe(201);
    expect(before).not.toBe('replica-coder');
    expect(await routeCode(a, creds)).toBe('replica-coder');
    expect(
      await eventually(
        () => routeCode(b, creds),
        (m) => m === 'replica-coder',
        15_000,
      ),
    ).toBe('replica-coder');

    const deleted = await fetch(`${a.urls.autonomous}/api/v1/autonomous/ai/models/replica-coder`, {
      method: 'DELETE',
      headers: await creds.headers(),
    });
    expect(deleted.status).toBe(204);
    expect(
      await eventually(
        () => routeCode(b, creds),
        (m) => m !== 'replica-coder',
        15_000,
      ),
    ).toBe(before);
  });
});
