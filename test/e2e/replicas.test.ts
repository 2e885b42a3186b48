import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Client } from 'pg';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../support/real-services.ts';
import { spawnBlocks, type BlocksProcess } from '../support/blocks-process.ts';
import { eventually } from '../support/blocks.ts';

const available = await probeRealServices();

const route = (url: string, n: number) =>
  fetch(`${url}/api/v1/autonomous/ai/route`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-correlation-id': `replicas-${n}` },
    body: JSON.stringify({ task_type: 'summarization', complexity: 'low', context: { prompt: `Summarise item ${n}` } }),
  });

describe.skipIf(!available)('two autonomous processes and a gateway on one PostgreSQL and one NATS', () => {
  let services: RealServicesEnv;
  let db: Client;
  const processes: BlocksProcess[] = [];
  let a: BlocksProcess;
  let b: BlocksProcess;
  let gateway: BlocksProcess;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    db = new Client({ connectionString: services.env.DATABASE_URL });
    await db.connect();
    a = await spawnBlocks(['autonomous'], services.env);
    b = await spawnBlocks(['autonomous'], services.env);
    gateway = await spawnBlocks(['gateway'], { ...services.env, BLOCKS__services__autonomous__url: a.urls.autonomous as string });
    processes.push(a, b, gateway);
  }, 60_000);

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await db?.end();
    await services?.cleanup();
  });

  const counted = async (): Promise<number> =>
    Number((await db.query<{ n: string }>('SELECT coalesce(sum(decisions), 0) AS n FROM analytics_model_usage')).rows[0]?.n);

  it('answers through the gateway and either replica, and counts every decision exactly once', async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => route(gateway.urls.gateway as string, i)),
      ...Array.from({ length: 30 }, (_, i) => route(b.urls.autonomous as string, 100 + i)),
    ]);
    expect(answers.map((r) => r.status)).toEqual(Array(60).fill(200));
    expect(answers[0]?.headers.get('x-correlation-id')).toBe('replicas-0');

    expect(await eventually(counted, (n) => n >= 60, 20_000)).toBe(60);
    const inbox = await db.query<{ n: string }>("SELECT count(*) AS n FROM inbox WHERE consumer = 'analytics-model-usage'");
    expect(Number(inbox.rows[0]?.n)).toBe(60);
    // A relay marks its batch published after the bus took it, which can be after a consumer counted it.
    const pending = async (): Promise<number> =>
      Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE published_at IS NULL')).rows[0]?.n);
    expect(await eventually(pending, (n) => n === 0)).toBe(0);
    // The count commits before the consumer logs its line, and the line crosses a pipe: wait for it.
    const counterLines = () => [...a.logs, ...b.logs].filter((l) => l.msg === 'routing decision counted');
    const logLines = await eventually(
      async () => counterLines(),
      (lines) => lines.length >= 60,
    );
    expect(new Set(logLines.map((l) => l.correlation_id)).size).toBe(60);
    expect(logLines).toHaveLength(60);
  });

  it('keeps serving on the surviving replica when one is killed, and the gateway answers 502 for the dead one', async () => {
    a.child.kill('SIGKILL');
    await a.exited;
    const before = await counted();
    const survivor = await route(b.urls.autonomous as string, 500);
    expect(survivor.status).toBe(200);
    const viaGateway = await route(gateway.urls.gateway as string, 501);
    expect(viaGateway.status).toBe(502);
    expect(viaGateway.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await viaGateway.json()) as { code: string }).code).toBe('UPSTREAM_UNAVAILABLE');
    expect(await eventually(counted, (n) => n >= before + 1, 20_000)).toBe(before + 1);
  });

  it('shuts down on SIGTERM with exit code 0', async () => {
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(b.logs.some((l) => l.msg === 'shutting down')).toBe(true);
  });
});
