import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../src/start.ts';
import { eventually, startTestBlocks, testConfig } from '../support/blocks.ts';
import { testCredentials } from '../support/credentials.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { probeService } from '../support/services.ts';
import { startMember, type Member } from './members.ts';

const postgres = await probeService('postgres');

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

describe.skipIf(!postgres.ok)('gateway upstream pools (members are real HTTP servers)', () => {
  let db: TestDatabase;
  const running: RunningBlocks[] = [];
  const members: Member[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('blocks_gateway');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((blocks) => blocks.close()));
    await Promise.allSettled(members.splice(0).map((m) => m.kill()));
  });
  afterAll(async () => {
    await db?.drop();
  });

  const startMembers = async (...names: string[]): Promise<Member[]> => {
    const started = await Promise.all(names.map((name) => startMember(name)));
    members.push(...started);
    return started;
  };

  /** A gateway alone (roles ['gateway']) whose autonomous service is the given pool. */
  const startGateway = async (
    pool: readonly Member[],
    upstreams: Record<string, unknown> = {},
    resilience: Record<string, unknown> = {},
  ) => {
    const config = testConfig(
      { DATABASE_URL: db.url },
      {
        services: { autonomous: { urls: pool.map((m) => m.url) }, collaborative: { url: 'http://127.0.0.1:9' } },
        // Checks off unless a test turns them on, so only the evidence a test provides moves members.
        gateway: { upstreams: { health_check: { interval: 0 }, ...upstreams } },
        resilience,
      },
    );
    const blocks = await startTestBlocks({ config, roles: ['gateway'] });
    running.push(blocks);
    const base = blocks.urls.gateway as string;
    // Pass-through routes take any authenticated caller: a key with no scope at all is enough.
    const credential = await testCredentials(blocks).headers('default', []);
    const call = async (
      method: string,
      path: string,
      init: { body?: unknown; headers?: Record<string, string>; anonymous?: boolean } = {},
    ): Promise<Answer> => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(init.anonymous === true ? {} : credential),
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...init.headers,
        },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    };
    const available = async (): Promise<number> => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = /^blocks_gateway_upstream_members_available\{[^}]*service="autonomous"[^}]*\} (\d+)$/m.exec(text);
      return Number(line?.[1] ?? Number.NaN);
    };
    return { blocks, call, available, base, credential };
  };

  const sequential = async <T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await make(i));
    return out;
  };

  it('spreads requests round-robin over every member', async () => {
    const pool = await startMembers('a', 'b', 'c');
    const { call } = await startGateway(pool);
    const answers = await sequential(30, (i) => call('GET', `/api/v1/autonomous/items/${i}?q=1`));
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(pool.map((m) => m.served())).toEqual([10, 10, 10]);
    expect(new Set(answers.slice(0, 3).map((a) => a.body.member))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('refuses callers without a valid credential itself, and passes the credential on for the service to decide again', async () => {
    const [a] = (await startMembers('a')) as [Member];
    const { call, credential } = await startGateway([a]);
    const anonymous = await call('GET', '/api/v1/autonomous/items/1', { anonymous: true });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ code: 'AUTHENTICATION_REQUIRED' });
    const forged = await call('GET', '/api/v1/autonomous/items/1', { anonymous: true, headers: { 'x-api-key': 'bk_forged' } });
    expect(forged.body).toMatchObject({ status: 401, code: 'INVALID_CREDENTIALS' });
    // Naming another tenant than the key's is refused before anything is forwarded.
    const otherTenant = await call('GET', '/api/v1/autonomous/items/1', { headers: { 'x-blocks-tenant': 'someone-else' } });
    expect(otherTenant.body).toMatchObject({ status: 403, code: 'TENANT_MISMATCH' });
    expect(a.served()).toBe(0);

    const allowed = await call('GET', '/api/v1/autonomous/items/1');
    expect(allowed.status).toBe(200);
    expect(a.served()).toBe(1);
    expect(a.lastHeaders['x-api-key']).toBe(credential['x-api-key']);
  });

  it('least-connections sends new requests to the idle member while the other is busy', async () => {
    const pool = await startMembers('a', 'b');
    const { call } = await startGateway(pool, { balancing: 'least_connections' });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    for (const m of pool) m.hold = held;
    const slow = call('GET', '/api/v1/autonomous/slow');
    try {
      const busy = await eventually(
        async () => pool.find((m) => m.served() === 1),
        (m) => m !== undefined,
      );
      const idle = pool.find((m) => m !== busy) as Member;
      const fast = await sequential(10, (i) => call('GET', `/api/v1/autonomous/fast/${i}`));
      expect(fast.map((a) => a.body.member)).toEqual(Array(10).fill(idle.name));
    } finally {
      release();
    }
    expect((await slow).status).toBe(200);
    // Idle again: the two share the load once more.
    const after = await sequential(4, (i) => call('GET', `/api/v1/autonomous/fast/${i}`));
    expect(new Set(after.map((a) => a.body.member))).toEqual(new Set(['a', 'b']));
  });

  it('fails GETs over from a member killed mid-run without a client error, and ejects it', async () => {
    const pool = await startMembers('a', 'b', 'c');
    const { call, available } = await startGateway(pool, { passive: { failures: 2, ejection: 60_000 } });
    expect(await available()).toBe(3);
    const before = await sequential(6, (i) => call('GET', `/api/v1/autonomous/items/${i}`));
    expect(before.map((a) => a.status)).toEqual(Array(6).fill(200));
    await (pool[2] as Member).kill();
    const after = await sequential(30, (i) => call('GET', `/api/v1/autonomous/items/${i}`));
    expect(after.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(new Set(after.map((a) => a.body.member))).toEqual(new Set(['a', 'b']));
    expect(await available()).toBe(2);
    // PUT and DELETE are idempotent too, and carry their body to the member that answers.
    const put = await sequential(4, () => call('PUT', '/api/v1/autonomous/items/1', { body: { v: 1 } }));
    expect(put.map((a) => [a.status, a.body.body])).toEqual(Array(4).fill([200, '{"v":1}']));
  });

  it('retries a POST refused by a closed member on another member, as nothing was sent, with or without an Idempotency-Key', async () => {
    const [a, b] = (await startMembers('a', 'b')) as [Member, Member];
    // Ejection and breakers out of reach, so the closed member stays in rotation for the whole test.
    const { call } = await startGateway([a, b], { passive: { failures: 100, ejection: 1000 } }, { failure_threshold: 100 });
    await b.kill();
    const posts = await sequential(6, (i) => call('POST', '/api/v1/autonomous/jobs', { body: { i } }));
    expect(posts.map((p) => p.status)).toEqual(Array(6).fill(200));
    expect(posts.map((p) => p.body.member)).toEqual(Array(6).fill('a'));
    // Each POST reached the live member exactly once, body and all.
    expect(a.hits.get('POST /api/v1/autonomous/jobs')).toBe(6);
    expect(posts.map((p) => p.body.body)).toEqual(Array.from({ length: 6 }, (_, i) => JSON.stringify({ i })));
    const patches = await sequential(4, (i) => call('PATCH', `/api/v1/autonomous/items/${i}`, { body: { i } }));
    expect(patches.map((p) => [p.status, p.body.member])).toEqual(Array(4).fill([200, 'a']));
    const keyed = await sequential(4, (i) =>
      call('POST', '/api/v1/autonomous/jobs', { body: { i }, headers: { 'idempotency-key': `k-${i}` } }),
    );
    expect(keyed.map((p) => p.status)).toEqual([200, 200, 200, 200]);
  });

  it('answers 502 for a POST whose connection was cut after it was sent (not retried: the member may have acted); an Idempotency-Key makes it retryable', async () => {
    const [a, b] = (await startMembers('a', 'b')) as [Member, Member];
    const { call } = await startGateway([a, b], { passive: { failures: 100, ejection: 1000 } }, { failure_threshold: 100 });
    const posts = await sequential(4, (i) => call('POST', '/api/v1/autonomous/jobs/reset', { body: { i } }));
    expect(posts.map((p) => p.status)).toEqual(Array(4).fill(502));
    const refused = posts[0] as Answer;
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', upstream: 'autonomous' });
    // Sent once each, never a second time.
    expect((a.hits.get('POST /api/v1/autonomous/jobs/reset') ?? 0) + (b.hits.get('POST /api/v1/autonomous/jobs/reset') ?? 0)).toBe(4);

    // With a key the client said a second attempt is safe: both members see it (and both cut it).
    const keyed = await call('POST', '/api/v1/autonomous/jobs/reset', { body: { i: 9 }, headers: { 'idempotency-key': 'k-reset' } });
    expect(keyed.status).toBe(502);
    expect((a.hits.get('POST /api/v1/autonomous/jobs/reset') ?? 0) + (b.hits.get('POST /api/v1/autonomous/jobs/reset') ?? 0)).toBe(6);
  });

  it('takes a member out on failed health checks and brings it back once it recovers', async () => {
    const [a, b] = (await startMembers('a', 'b')) as [Member, Member];
    const { call, available, base } = await startGateway([a, b], {
      health_check: { interval: 50, timeout: 500, healthy_threshold: 2, unhealthy_threshold: 2 },
    });
    await b.kill();
    expect(await eventually(available, (n) => n === 1)).toBe(1);
    const health = (await (await fetch(`${base}/health`)).json()) as { dependencies: Record<string, { status: string }> };
    expect(health.dependencies['upstream (autonomous)']?.status).toBe('up');
    const during = await sequential(6, (i) => call('POST', '/api/v1/autonomous/jobs', { body: { i } }));
    expect(during.map((p) => p.body.member)).toEqual(Array(6).fill('a'));

    await b.revive();
    expect(await eventually(available, (n) => n === 2)).toBe(2);
    const after = await sequential(6, (i) => call('POST', '/api/v1/autonomous/jobs', { body: { i } }));
    expect(after.filter((p) => p.body.member === 'b')).toHaveLength(3);

    // A member that answers but says it is not ready is taken out too.
    b.ready = false;
    expect(await eventually(available, (n) => n === 1)).toBe(1);
    b.ready = true;
    expect(await eventually(available, (n) => n === 2)).toBe(2);
  });

  it('answers 502 naming the service when every member is down, then 503 with Retry-After once every breaker is open', async () => {
    const [a, b] = (await startMembers('a', 'b')) as [Member, Member];
    const { call, base, available } = await startGateway([a, b], {}, { failure_threshold: 2, recovery_timeout: 30_000 });
    await a.kill();
    await b.kill();
    const first = await call('GET', '/api/v1/autonomous/items/1');
    expect(first.status).toBe(502);
    expect(first.body).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', upstream: 'autonomous' });
    expect(String(first.body.detail)).toMatch(/autonomous/);
    const second = await call('GET', '/api/v1/autonomous/items/2');
    expect(second.status).toBe(502);
    // Two failed attempts on each member: both breakers are open, nothing is sent any more.
    const third = await call('GET', '/api/v1/autonomous/items/3');
    expect(third.status).toBe(503);
    expect(third.body).toMatchObject({ code: 'UPSTREAM_CIRCUIT_OPEN', upstream: 'autonomous' });
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(29);
    expect(Number(third.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect(await available()).toBe(0);
    const health = (await (await fetch(`${base}/health`)).json()) as {
      status: string;
      dependencies: Record<string, { status: string; required: boolean }>;
    };
    expect(health.dependencies['upstream (autonomous)']).toMatchObject({ status: 'down', required: false });
    expect(health.status).toBe('degraded');
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
  });

  it('stops checking members once the gateway is closed', async () => {
    const [a] = (await startMembers('a')) as [Member];
    const { blocks } = await startGateway([a], { health_check: { interval: 20, timeout: 200 } });
    const checks = () => Promise.resolve(a.hits.get('GET /health/ready') ?? 0);
    expect(await eventually(checks, (n) => n >= 3)).toBeGreaterThanOrEqual(3);
    await blocks.close();
    const after = await checks();
    await new Promise((r) => setTimeout(r, 200));
    expect(await checks()).toBe(after);
  });
});
