import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { RunningBlocks } from '../../../src/start.ts';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { createRateLimitHook } from '../../../src/platform/http/rate-limit.ts';
import { createRedisRateLimiter } from '../../../src/platform/rate-limit/redis.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { probeService, uniqueName } from '../../support/services.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';
import { withMigratedPglite } from '../../support/templates.ts';

const limits = {
  enabled: true,
  on_store_failure: 'open',
  store_timeout: '100ms',
  tiers: { default: { limit: 3, period: '1m', burst: 3 }, pro: { limit: 6, period: '1m', burst: 6 } },
  tenant_tiers: { bigco: 'pro' },
  scopes: { 'ai:models:write': { limit: 1, period: '1m', burst: 1 } },
};

describe('rate limits on every route (embedded)', () => {
  const dir = tempDir('blocks-ratelimit');
  let blocks: RunningBlocks;
  let base: string;
  let creds: TestCredentials;
  const list = (headers: Record<string, string> = {}) => fetch(`${base}/api/v1/autonomous/ai/models?limit=1`, { headers });
  // Allowances are per API key: testCredentials makes one key per tenant and scope set, so each test names its own.
  const READ = ['ai:models:read'];

  beforeAll(async () => {
    blocks = await startTestBlocks({
      config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path) }, { rate_limits: limits }),
      roles: ['autonomous'],
    });
    base = blocks.urls.autonomous as string;
    creds = testCredentials(blocks);
  });
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it("admits the tier's allowance with RateLimit fields, then answers 429 with Retry-After and a problem", async () => {
    const headers = await creds.headers('one', READ);
    const answers = [await list(headers), await list(headers), await list(headers)];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(answers.map((r) => r.headers.get('ratelimit'))).toEqual([
      expect.stringMatching(/^"default";r=2;t=\d+$/),
      expect.stringMatching(/^"default";r=1;t=\d+$/),
      expect.stringMatching(/^"default";r=0;t=\d+$/),
    ]);
    expect(answers[0]?.headers.get('ratelimit-policy')).toBe('"default";q=3;w=60');

    const refused = await list(headers);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(19);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(20);
    expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED', status: 429, policy: 'default' });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/blocks_rate_limited_total\{[^}]*policy="default"[^}]*\} [1-9]/);
  });

  it('gives each API key its own allowance, and never limits health, metrics or docs', async () => {
    const first = await creds.headers('two', READ);
    // Another key of the same tenant (another scope set, so another key).
    const second = await creds.headers('two', [...READ, 'ai:read']);
    for (let i = 0; i < 3; i++) expect((await list(first)).status).toBe(200);
    expect((await list(first)).status).toBe(429);
    expect((await list(second)).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
    }
  });

  it("applies the tier of the key's tenant", async () => {
    const headers = await creds.headers('bigco', READ);
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await list(headers)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it("applies a scope's stricter allowance on top of the tier", async () => {
    const headers = await creds.headers('five', [...READ, 'ai:models:write']);
    const remove = () => fetch(`${base}/api/v1/autonomous/ai/models/no-such-model`, { method: 'DELETE', headers });
    expect((await remove()).status).toBe(404);
    const refused = await remove();
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ policy: 'scope:ai:models:write' });
  });
});

const redis = await probeService('redis');
const postgres = await probeService('postgres');

describe.skipIf(!redis.ok || !postgres.ok)('rate limits shared through Redis', () => {
  const dirs = [tempDir('blocks-rl-a'), tempDir('blocks-rl-b')];
  const prefix = `${uniqueName('rl')}:`;
  const replicas: RunningBlocks[] = [];
  // Replicas share their database as in production, so a key made through one is valid at the other.
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
    for (const dir of dirs) {
      const config = testConfig(
        { BLOCKS_DATA_DIR: dir.path, REDIS_URL: redis.url, DATABASE_URL: database.url },
        {
          // The test is about exactness across processes, not the store's time bound: a loaded machine
          // must not turn a slow Redis answer into a fail-open admission.
          rate_limits: {
            ...limits,
            store_timeout: '2s',
            tiers: { default: { limit: 10, period: '1m', burst: 10 } },
            tenant_tiers: {},
          },
          cache: { key_prefix: prefix },
        },
      );
      replicas.push(await startTestBlocks({ config, roles: ['autonomous'] }));
    }
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await database?.drop();
    for (const dir of dirs) dir.remove();
    const client = new Redis(redis.url);
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  });

  it('is exact across two processes under concurrent requests: 40 at once, split over both, admit exactly 10', async () => {
    const urls = replicas.map((r) => r.urls.autonomous as string);
    const headers = await testCredentials(replicas[0] as RunningBlocks).headers('default', ['ai:models:read']);
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        fetch(`${urls[i % 2] as string}/api/v1/autonomous/ai/models?limit=1`, { headers }).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
  });
});

describe('when the shared limiter does not answer', () => {
  const build = async (onStoreFailure: 'open' | 'closed'): Promise<{ app: HttpServer; auth: Record<string, string> }> => {
    const metrics = createMetrics();
    const { access, ...kit } = await testAccess({ metrics });
    const logger = createLogger({ level: 'silent', service: 'test', version: '1' });
    const app = await testHttpServer(access, {
      version: '1',
      logger,
      metrics,
      rateLimits: createRateLimitHook({
        // Nothing listens on port 9: every decision fails within the limiter's bound.
        limiter: createRedisRateLimiter({ url: 'redis://127.0.0.1:9', keyPrefix: 'x:', timeoutMs: 100 }),
        config: {
          ...limits,
          on_store_failure: onStoreFailure,
          store_timeout: 100,
          tiers: { default: { limit: 1, period: 60_000 } },
          tenant_tiers: {},
          scopes: {},
        },
        logger,
        metrics,
      }),
    });
    app.get('/thing', { config: { scope: 'things:read' } }, async () => ({ ok: true }));
    await app.ready();
    return { app, auth: await kit.bearer('t1', ['things:read']) };
  };

  it('fails open by policy: the request is served, within a bounded wait, and counted', async () => {
    const { app, auth } = await build('open');
    try {
      const started = Date.now();
      const [first, second] = [await app.inject({ url: '/thing', headers: auth }), await app.inject({ url: '/thing', headers: auth })];
      expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect((await app.inject({ url: '/metrics' })).body).toMatch(/blocks_rate_limiter_failures_total\{[^}]*outcome="open"[^}]*\} 2/);
    } finally {
      await app.close();
    }
  });

  it('fails closed by policy: 503 problem, within a bounded wait', async () => {
    const { app, auth } = await build('closed');
    try {
      const started = Date.now();
      const res = await app.inject({ url: '/thing', headers: auth });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'RATE_LIMITER_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await app.close();
    }
  });
});
