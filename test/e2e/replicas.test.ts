import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Client } from 'pg';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../support/real-services.ts';
import { clientToken, createApiKey, firstStartClient, spawnBlocks, type BlocksProcess } from '../support/blocks-process.ts';
import { eventually } from '../support/blocks.ts';

const available = await probeRealServices();

const route = (url: string, n: number, credential: Record<string, string>) =>
  fetch(`${url}/api/v1/autonomous/ai/route`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-correlation-id': `replicas-${n}`, ...credential },
    body: JSON.stringify({ task_type: 'summarization', complexity: 'low', context: { prompt: `Summarise item ${n}` } }),
  });

// Every process verifies Blocks' tokens itself, so all must agree on their `iss`: the gateway's port is
// only known once it listens, so the issuer is configured (as a split deployment does).
const ISSUER = 'https://blocks.replicas.test';

describe.skipIf(!available)('two autonomous processes and a gateway on one PostgreSQL and one NATS', () => {
  let services: RealServicesEnv;
  let db: Client;
  const processes: BlocksProcess[] = [];
  let a: BlocksProcess;
  let b: BlocksProcess;
  let gateway: BlocksProcess;
  let key: Record<string, string>;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const env = { ...services.env, BLOCKS__auth__issuer: ISSUER };
    db = new Client({ connectionString: services.env.DATABASE_URL });
    await db.connect();
    a = await spawnBlocks(['autonomous'], env);
    processes.push(a);
    b = await spawnBlocks(['autonomous'], env);
    processes.push(b);
    gateway = await spawnBlocks(['gateway'], { ...env, BLOCKS__services__autonomous__url: a.urls.autonomous as string });
    processes.push(gateway);
    // The gateway made the first tenant on the shared database: its printed admin client makes a key for the AI route.
    const admin = await clientToken(gateway.urls.gateway as string, await firstStartClient(gateway));
    key = { 'x-api-key': await createApiKey(gateway.urls.gateway as string, admin, ['ai:route']) };
  }, 120_000);

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
      ...Array.from({ length: 30 }, (_, i) => route(gateway.urls.gateway as string, i, key)),
      ...Array.from({ length: 30 }, (_, i) => route(b.urls.autonomous as string, 100 + i, key)),
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

  it("accepts the gateway's access tokens on a replica in another process, and refuses them without the route's scope", async () => {
    const gatewayUrl = gateway.urls.gateway as string;
    const admin = await clientToken(gatewayUrl, await firstStartClient(gateway));
    const make = async (scopes: string[]) => {
      const res = await fetch(`${gatewayUrl}/api/v1/identity/clients`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `router ${scopes.join(' ')}`, scopes }),
      });
      expect(res.status).toBe(201);
      const client = (await res.json()) as { client_id: string; client_secret: string };
      return clientToken(gatewayUrl, { clientId: client.client_id, clientSecret: client.client_secret });
    };
    const router = { authorization: `Bearer ${await make(['ai:route'])}` };
    const reader = { authorization: `Bearer ${await make(['ai:read'])}` };
    // Signed by the gateway; replica b finds the public key in the shared database.
    expect((await route(b.urls.autonomous as string, 200, router)).status).toBe(200);
    expect((await route(gatewayUrl, 201, router)).status).toBe(200);
    const underScoped = await route(b.urls.autonomous as string, 202, reader);
    expect(underScoped.status).toBe(403);
    expect(await underScoped.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:route' });
    // The gateway passes any authenticated caller on; replica a refuses it just the same.
    const viaGateway = await route(gatewayUrl, 203, reader);
    expect(viaGateway.status).toBe(403);
    expect(await viaGateway.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:route' });
    expect((await route(gatewayUrl, 204, {})).status).toBe(401);
    expect((await route(b.urls.autonomous as string, 205, {})).status).toBe(401);
    // Only the two allowed requests were decided and counted.
    expect(await eventually(counted, (n) => n >= 62, 20_000)).toBe(62);
  });

  it('keeps serving on the surviving replica when one is killed, and the gateway answers 502 for the dead one', async () => {
    a.child.kill('SIGKILL');
    await a.exited;
    const before = await counted();
    const survivor = await route(b.urls.autonomous as string, 500, key);
    expect(survivor.status).toBe(200);
    const viaGateway = await route(gateway.urls.gateway as string, 501, key);
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
