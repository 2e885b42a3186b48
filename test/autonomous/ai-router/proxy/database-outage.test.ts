import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { buildEvent } from '../../../../src/platform/events/index.ts';
import type { Delivery } from '../../../../src/platform/bus/port.ts';
import { realServicesEnv, probeRealServices, type RealServicesEnv } from '../../../support/real-services.ts';
import { startTcpProxy, targetOf, type TcpProxy } from '../../../support/tcp-proxy.ts';
import { eventually } from '../../../support/blocks.ts';
import { chatBody, startProxyHarness, type ProxyHarness } from './proxy-harness.ts';

/**
 * PostgreSQL going away under a running Blocks, through a TCP proxy the test cuts: nothing the
 * proxy pays a provider for goes unrecorded, and nothing a consumer was handed is lost.
 */
const servicesUp = await probeRealServices();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/** How long a call the provider answered waits for the database to take its record. */
const RECORD_WAIT_MS = 2_500;

describe.skipIf(!servicesUp)('a database outage', () => {
  let services: RealServicesEnv;
  let pgProxy: TcpProxy;
  let harness: ProxyHarness;
  let direct: Client;
  const deadLetters: Delivery[] = [];

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const databaseUrl = services.env['DATABASE_URL'] as string;
    pgProxy = await startTcpProxy(targetOf(databaseUrl));
    harness = await startProxyHarness({
      env: { ...services.env, DATABASE_URL: pgProxy.urlFor(databaseUrl) },
      // Retries of a consumer wait at most 500 ms, so the test sees the recovery soon after the restore.
      overrides: { bus: { max_retry_delay: 500 } },
      aiOverrides: { proxy: { attempt_timeout: 3_000, request_timeout: 6_000, max_attempts: 3, record_wait: RECORD_WAIT_MS } },
    });
    direct = new Client({ connectionString: databaseUrl });
    await direct.connect();
    await harness.blocks.platform.bus.subscribe({ consumer: 'test-dead-letters', subject: 'dlq.>' }, async (delivery) => {
      deadLetters.push(delivery);
    });
  }, 60_000);

  afterAll(async () => {
    await pgProxy?.restore();
    await harness?.close();
    await direct?.end();
    await pgProxy?.close();
    await services?.cleanup();
  });

  it('refuses a chat call with 503 and Retry-After before calling any provider, and serves and records calls again once it is back', async () => {
    // A first call signs the key in (cached), so that the refusal below is the proxy's own.
    expect((await harness.chat(chatBody('alpha'))).status).toBe(200);
    // The proxy trusts a database it wrote to in the last second; past that it checks first.
    await sleep(1_100);
    const before = harness.fakes['fake-a'].requests.length;
    await pgProxy.cut();
    try {
      for (let i = 0; i < 3; i++) {
        const refused = await harness.chat(chatBody('alpha'));
        expect(refused.status).toBe(503);
        expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(((await refused.json()) as { code: string }).code).toBe('DATABASE_UNAVAILABLE');
      }
      expect(harness.fakes['fake-a'].requests.length - before).toBe(0);
    } finally {
      await pgProxy.restore();
    }
    const served = await eventually(
      () => harness.chat(chatBody('alpha'), { headers: { 'x-correlation-id': 'after-the-outage' } }),
      (response) => response.status === 200,
      10_000,
    );
    expect(served.status).toBe(200);
    const recorded = await harness.eventsFor('after-the-outage');
    expect(recorded.map((event) => event.event_type)).toContain('ai.request.completed');
  }, 30_000);

  it('counts every call event exactly once after an outage longer than five retries, dead-lettering none', async () => {
    const tenant = `outage-${Date.now()}`;
    const events = Array.from({ length: 20 }, (_, i) =>
      buildEvent({
        event_type: 'ai.request.completed',
        source_service: 'autonomous.ai-router',
        correlation_id: `outage-${i}`,
        payload: {
          request_id: `r-${i}`,
          tenant,
          api_key_id: null,
          model: 'alpha',
          cached: false,
          prompt_tokens: 10,
          completion_tokens: 5,
          cost_usd: 0.001,
        },
      }),
    );
    await pgProxy.cut();
    try {
      const { bus } = harness.blocks.platform;
      for (const event of events) await bus.publish({ subject: event.event_type, id: event.event_id, key: tenant, data: event });
      // Five attempts of a consumer used to span about 15 s (1 + 2 + 4 + 8 s of backoff).
      await sleep(16_500);
    } finally {
      await pgProxy.restore();
    }
    const usage = await eventually(
      async () =>
        (
          await direct.query<{ requests: string; prompt_tokens: string }>(
            'SELECT requests::text, prompt_tokens::text FROM ai_usage_daily WHERE tenant = $1',
            [tenant],
          )
        ).rows,
      (rows) => rows.length === 1 && rows[0]?.requests === String(events.length),
      15_000,
    );
    expect(usage).toEqual([{ requests: String(events.length), prompt_tokens: String(events.length * 10) }]);
    // Redelivered copies (if any) found their inbox rows: still counted once.
    await sleep(1_000);
    const again = await direct.query<{ requests: string }>('SELECT requests::text FROM ai_usage_daily WHERE tenant = $1', [tenant]);
    expect(again.rows).toEqual([{ requests: String(events.length) }]);
    expect(deadLetters.filter((letter) => letter.subject.includes('ai-usage-daily'))).toEqual([]);
  }, 60_000);

  /** Starts a call the provider answers after 800 ms, and cuts the database once the provider has it, for `cutMs`. */
  const callThroughACut = async (correlationId: string, cutMs: number) => {
    // A first call signs the key in (cached), so the database is needed only for the record.
    expect((await harness.chat(chatBody('alpha'))).status).toBe(200);
    const fake = harness.fakes['fake-a'];
    fake.setBehaviour({ kind: 'slow', delayMs: 800 });
    const before = fake.requests.length;
    try {
      const answer = harness.chat(chatBody('alpha'), { headers: { 'x-correlation-id': correlationId } });
      await eventually(
        async () => fake.requests.length,
        (n) => n > before,
      );
      await pgProxy.cut();
      try {
        await sleep(cutMs);
      } finally {
        await pgProxy.restore();
      }
      return { answer: await answer, providerCalls: fake.requests.length - before };
    } finally {
      fake.setBehaviour({ kind: 'answer' });
    }
  };

  it('answers a call whose provider answered while the database was away once it is back within record_wait, recorded once', async () => {
    const { answer, providerCalls } = await callThroughACut('answered-during-cut', 1_500);
    expect(answer.status).toBe(200);
    expect(providerCalls).toBe(1);
    const events = await harness.eventsFor('answered-during-cut');
    expect(events.map((event) => event.event_type)).toEqual(['ai.request.completed']);
    await sleep(500);
    expect(await harness.eventsFor('answered-during-cut')).toHaveLength(1);
  }, 30_000);

  it('withholds the answer (503 DATABASE_UNAVAILABLE, not 500) when the database stays away past record_wait', async () => {
    const { answer, providerCalls } = await callThroughACut('withheld-during-cut', RECORD_WAIT_MS + 2_000);
    expect(answer.status).toBe(503);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const problem = (await answer.json()) as { code: string; detail: string };
    expect(problem.code).toBe('DATABASE_UNAVAILABLE');
    expect(problem.detail).toMatch(/answer is withheld/);
    expect(providerCalls).toBe(1);
    const { rows } = await direct.query(
      `SELECT 1 FROM events WHERE correlation_id = 'withheld-during-cut' AND event_type LIKE 'ai.request.%'`,
    );
    expect(rows).toEqual([]);
  }, 30_000);
});
