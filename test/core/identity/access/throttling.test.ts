import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientToken, createApiKey, firstStartClient, spawnBlocks, type BlocksProcess } from '../../../support/blocks-process.ts';
import { eventually } from '../../../support/blocks.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../../support/real-services.ts';

const available = await probeRealServices();
const LIMIT = 4;

// Failed authentications are counted per source address in Redis, so an attacker spreading guesses
// over gateway replicas gets no more of them than against one. Two `blocks start gateway` processes
// on one PostgreSQL and one Redis, with a small allowance.
describe.skipIf(!available)('failed-attempt throttling shared by two gateway processes (Redis)', { timeout: 120_000 }, () => {
  let services: RealServicesEnv;
  let db: Client;
  let a: BlocksProcess;
  let b: BlocksProcess;
  let valid: Record<string, string>;
  const processes: BlocksProcess[] = [];

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const env = {
      ...services.env,
      // An hour per attempt regained: nothing refills while the test runs.
      BLOCKS__auth__failed_attempts: JSON.stringify({ limit: LIMIT, period: '4h', burst: LIMIT }),
      BLOCKS_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    };
    a = await spawnBlocks(['gateway'], env);
    processes.push(a);
    b = await spawnBlocks(['gateway'], env);
    processes.push(b);
    db = new Client({ connectionString: services.env.DATABASE_URL });
    await db.connect();
    const admin = await clientToken(a.urls.gateway as string, await firstStartClient(a));
    valid = { 'x-api-key': await createApiKey(a.urls.gateway as string, admin, ['identity:admin']) };
  }, 120_000);
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await db?.end();
    await services?.cleanup();
  });

  const keys = (p: BlocksProcess, headers: Record<string, string>) =>
    fetch(`${p.urls.gateway as string}/api/v1/identity/api-keys`, { headers: { 'x-correlation-id': 'throttle', ...headers } });
  const badClient = (p: BlocksProcess) =>
    fetch(`${p.urls.gateway as string}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-correlation-id': 'throttle' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'cl_000000000000000000000000', client_secret: 'bks_wrong' }),
    });
  const metric = async (p: BlocksProcess, name: string, reason?: string): Promise<number> => {
    const text = await (await fetch(`${p.urls.gateway as string}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(name) && (reason === undefined || l.includes(`reason="${reason}"`)) && !l.startsWith('#'));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  const reasons = async (): Promise<string[]> =>
    (
      await db.query<{ reason: string }>(
        "SELECT payload->>'reason' AS reason FROM events WHERE event_type = 'security.access.denied' AND correlation_id = 'throttle' ORDER BY payload->>'reason'",
      )
    ).rows.map((row) => row.reason);

  it('adds up failures made against either process; past the limit the address gets 429 with Retry-After, valid key or not', async () => {
    expect((await keys(a, valid)).status).toBe(200);
    // Four failures of four kinds, two on each process: each process alone is far from the limit.
    expect((await badClient(b)).status).toBe(401);
    // /oauth/token counts its 401 once answered; its audit event is written after the count.
    expect(await eventually(reasons, (r) => r.includes('invalid_client'))).toContain('invalid_client');
    expect((await keys(a, { 'x-api-key': `bk_${'Q'.repeat(43)}` })).status).toBe(401);
    expect((await keys(b, {})).status).toBe(401);
    // The fourth uses the shared allowance up: A, which saw it, blocks the address at once.
    expect((await keys(a, { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' })).status).toBe(401);

    // A has seen two failures of its own: counted alone, it would let this valid key through.
    const throttled = await keys(a, valid);
    expect(throttled.status).toBe(429);
    expect(await throttled.json()).toMatchObject({ code: 'AUTHENTICATION_THROTTLED' });
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);

    // B learns of the block at the next credential it does not know: the shared allowance refuses to reserve
    // an attempt for it, so it is refused unchecked (429), and from then on B refuses the address too.
    expect((await keys(b, { 'x-api-key': `bk_${'S'.repeat(43)}` })).status).toBe(429);
    const onB = await keys(b, valid);
    expect(onB.status).toBe(429);
    expect(Number(onB.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('counts failed attempts by reason on /metrics, and throttled requests apart', async () => {
    expect(await metric(a, 'blocks_failed_authentication_attempts_total', 'invalid_key')).toBe(1);
    expect(await metric(a, 'blocks_failed_authentication_attempts_total', 'invalid_token')).toBe(1);
    expect(await metric(a, 'blocks_authentication_throttled_total')).toBe(1);
    expect(await metric(b, 'blocks_failed_authentication_attempts_total', 'invalid_client')).toBe(1);
    expect(await metric(b, 'blocks_failed_authentication_attempts_total', 'missing')).toBe(1);
    expect(await metric(b, 'blocks_failed_authentication_attempts_total', 'invalid_key')).toBe(0);
    expect(await metric(b, 'blocks_authentication_throttled_total')).toBe(2);
  });

  it('audits each refusal, the throttled ones included, in the shared database', async () => {
    const found = await eventually(reasons, (r) => r.length >= 7);
    expect(found).toEqual(['invalid_client', 'invalid_key', 'invalid_token', 'missing', 'throttled', 'throttled', 'throttled']);
  });
});
