import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientToken, firstStartClient, spawnBlocks, type BlocksProcess, type FirstStartClient } from '../support/blocks-process.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../support/real-services.ts';

const available = await probeRealServices();
const BURST = 20;

// Guesses sent all at once, as an attacker does, split over two `blocks start gateway` processes on
// one PostgreSQL and one Redis. Each attempt takes from its address's allowance when it starts (in
// Redis, shared), so no more than the burst are ever checked, however many arrive together and
// whichever process gets them. Each test guesses from a loopback address of its own.
describe.skipIf(!available)('failed attempts sent at once to two gateway processes sharing Redis', { timeout: 180_000 }, () => {
  let services: RealServicesEnv;
  let a: BlocksProcess;
  let b: BlocksProcess;
  let admin: FirstStartClient;
  const processes: BlocksProcess[] = [];
  const agents: Agent[] = [];
  const USER = { email: 'someone@replicas.example', password: 'the right password, long enough' };

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const env = {
      ...services.env,
      // One attempt regained every 12 minutes: nothing refills while the test runs.
      BLOCKS__auth__failed_attempts: JSON.stringify({ limit: BURST, period: '4h', burst: BURST }),
      BLOCKS__auth__password_grant: 'true',
      // This machine is small and shared: a Redis answer later than the default 100 ms would move the
      // attempt to the process's own allowance (a bound per process; test/platform/http covers it).
      BLOCKS__rate_limits__store_timeout: '2s',
      BLOCKS_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    };
    a = await spawnBlocks(['gateway'], env);
    processes.push(a);
    b = await spawnBlocks(['gateway'], env);
    processes.push(b);
    admin = await firstStartClient(a);
    const token = await clientToken(a.urls.gateway as string, admin);
    const created = await fetch(`${a.urls.gateway as string}/api/v1/identity/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...USER, roles: ['viewer'] }),
    });
    if (created.status !== 201) throw new Error(`creating the user: ${created.status} ${await created.text()}`);
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await Promise.all(agents.map((agent) => agent.close()));
    await services?.cleanup();
  });

  /** Sends to A and B in turn from `address` (any 127.0.0.0/8 address is this machine). */
  function from(address: string) {
    const agent = new Agent({ localAddress: address });
    agents.push(agent);
    return async (i: number, path: string, init: { headers: Record<string, string>; body?: string }): Promise<number> => {
      const target = i % 2 === 0 ? a : b;
      const answer = await request(`${target.urls.gateway as string}${path}`, {
        method: init.body === undefined ? 'GET' : 'POST',
        headers: init.headers,
        body: init.body,
        dispatcher: agent,
      });
      await answer.body.dump();
      return answer.statusCode;
    };
  }

  const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
  const passwordGrant = (password: string): string =>
    new URLSearchParams({
      grant_type: 'password',
      client_id: admin.clientId,
      client_secret: admin.clientSecret,
      username: USER.email,
      password,
    }).toString();
  const secretGrant = (secret: string): string =>
    new URLSearchParams({ grant_type: 'client_credentials', client_id: admin.clientId, client_secret: secret }).toString();

  /** 60 requests at once, then 150 at once: how many of each got past the throttle (any answer but 429). */
  async function waves(send: (i: number) => Promise<number>): Promise<{ first: number[]; second: number[] }> {
    const first = await Promise.all(Array.from({ length: 60 }, (_, i) => send(i)));
    const second = await Promise.all(Array.from({ length: 150 }, (_, i) => send(60 + i)));
    return { first, second };
  }
  const past = (statuses: number[]): number => statuses.filter((status) => status !== 429).length;

  it('lets at most the burst of 60, then 150, wrong passwords sent at once past the throttle; then the right one is refused too', async () => {
    const send = from('127.0.0.20');
    const { first, second } = await waves((i) => send(i, '/oauth/token', { headers: FORM, body: passwordGrant(`wrong password ${i}`) }));
    expect(first.filter((status) => status === 400).length).toBeGreaterThan(0);
    expect(past(first)).toBeLessThanOrEqual(BURST);
    expect(past(first) + past(second)).toBeLessThanOrEqual(BURST);
    expect(await send(0, '/oauth/token', { headers: FORM, body: passwordGrant(USER.password) })).toBe(429);
    expect(await send(1, '/oauth/token', { headers: FORM, body: passwordGrant(USER.password) })).toBe(429);
  });

  it('does the same for wrong client secrets, and for forged API keys', async () => {
    const secrets = from('127.0.0.21');
    const bySecret = await waves((i) => secrets(i, '/oauth/token', { headers: FORM, body: secretGrant(`bks_wrong_${i}`) }));
    expect(bySecret.first.filter((status) => status === 401).length).toBeGreaterThan(0);
    expect(past(bySecret.first) + past(bySecret.second)).toBeLessThanOrEqual(BURST);

    const keys = from('127.0.0.22');
    const forged = (): Record<string, string> => ({ 'x-api-key': `bk_${randomBytes(32).toString('base64url')}` });
    const byKey = await waves((i) => keys(i, '/api/v1/identity/api-keys', { headers: forged() }));
    expect(byKey.first.filter((status) => status === 401).length).toBeGreaterThan(0);
    expect(past(byKey.first) + past(byKey.second)).toBeLessThanOrEqual(BURST);
  });

  it('gives honest requests their attempts back: the right password, 3 × the burst in rounds, from one address', async () => {
    const send = from('127.0.0.23');
    const statuses: number[] = [];
    for (let round = 0; round < 3; round++) {
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: BURST }, (_, i) => send(i, '/oauth/token', { headers: FORM, body: passwordGrant(USER.password) })),
        )),
      );
    }
    expect(statuses).toEqual(Array.from({ length: 3 * BURST }, () => 200));
  });
});
