import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../src/platform/config/schema.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { captureLogs, eventually, startTestBlocks, type CapturedLogs } from '../support/blocks.ts';

/**
 * Configuration the suite needs on top of the environment's: tenant policies the routing tests use.
 * Every default provider is in region `us`, so `eu-only` can be served by no model.
 */
export const AI_ROUTE_OVERRIDES = {
  ai: {
    tenants: {
      'openai-only': { allowed_providers: ['openai'], optimize: 'quality' },
      'eu-only': { allowed_regions: ['eu'] },
    },
  },
};

const shippedModels = (
  parseYaml(readFileSync(new URL('../../config/models.yaml', import.meta.url), 'utf8')) as {
    models: Array<{ model: string; provider: string }>;
  }
).models;

export interface E2eEnvironment {
  readonly config: Config;
  cleanup(): Promise<void>;
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * The first slice end to end: one request through gateway (or straight to the service) is
 * answered, stored as an event, relayed over the bus and counted by analytics, with one
 * correlation id all the way. Written once, run on the embedded defaults and on real services.
 */
export function aiRouteSuite(name: string, makeEnvironment: () => Promise<E2eEnvironment>): void {
  describe(`AI route end to end (${name})`, () => {
    let environment: E2eEnvironment;
    let blocks: RunningBlocks;
    let logs: CapturedLogs;
    beforeAll(async () => {
      environment = await makeEnvironment();
      logs = captureLogs();
      blocks = await startTestBlocks({ config: environment.config, logger: logs.logger });
    });
    afterAll(async () => {
      await blocks?.close();
      await environment?.cleanup();
    });

    const eventCount = async (): Promise<number> =>
      Number((await blocks.platform.db.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]?.n);
    const decisionsFor = async (model: string): Promise<number> =>
      Number(
        (await blocks.platform.db.query<{ decisions: string }>('SELECT decisions FROM analytics_model_usage WHERE model = $1', [model]))
          .rows[0]?.decisions ?? 0,
      );

    it.each(['gateway', 'autonomous'] as const)(
      'routes a request sent to the %s and follows it through outbox, bus and consumer',
      async (role) => {
        const correlationId = `e2e-${role}-${Date.now()}`;
        const res = await fetch(`${blocks.urls[role]}/api/v1/autonomous/ai/route`, {
          ...json({
            task_type: 'code',
            complexity: 'medium',
            context: { prompt: 'Write a function that merges two sorted arrays in TypeScript.' },
          }),
          headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-correlation-id')).toBe(correlationId);
        const answer = (await res.json()) as {
          selected_model: string;
          confidence: number;
          routing_reason: string;
          estimated_cost: number;
          decision_id: string;
        };
        expect(answer.selected_model).toMatch(/\S/);
        expect(answer.confidence).toBeGreaterThan(0);
        expect(answer.confidence).toBeLessThanOrEqual(1);
        expect(answer.routing_reason).toContain(answer.selected_model);
        expect(answer.estimated_cost).toBeGreaterThan(0);
        const before = await decisionsFor(answer.selected_model);

        const stored = await eventually(
          async () =>
            (
              await blocks.platform.db.query<{
                event_type: string;
                correlation_id: string;
                published_at: unknown;
                payload: { decision_id: string };
              }>('SELECT event_type, correlation_id, published_at, payload FROM events WHERE correlation_id = $1', [correlationId])
            ).rows,
          (rows) => rows.length === 1 && rows[0]?.published_at != null,
        );
        expect(stored).toHaveLength(1);
        expect(stored[0]).toMatchObject({ event_type: 'ai.route.decided', correlation_id: correlationId });
        expect(stored[0]?.payload.decision_id).toBe(answer.decision_id);
        expect(stored[0]?.published_at).not.toBeNull();

        const line = await eventually(
          async () => logs.lines.find((l) => l.msg === 'routing decision counted' && l.correlation_id === correlationId),
          (found) => found !== undefined,
        );
        expect(line).toMatchObject({ model: answer.selected_model, correlation_id: correlationId });
        expect(await decisionsFor(answer.selected_model)).toBeGreaterThanOrEqual(Math.max(before, 1));

        const metrics = await (await fetch(`${blocks.urls.gateway}/metrics`)).text();
        const counted = new RegExp(
          `blocks_ai_model_decisions\\{[^}]*model="${answer.selected_model.replaceAll('.', '\\.')}"[^}]*\\} (\\d+)`,
        ).exec(metrics);
        expect(Number(counted?.[1])).toBe(await decisionsFor(answer.selected_model));
        expect(metrics).toMatch(/blocks_outbox_backlog\{[^}]*\} \d+/);
        expect(metrics).toMatch(/blocks_bus_consumer_lag\{[^}]*consumer="analytics-model-usage"[^}]*\} \d+/);
        expect(metrics).toMatch(/blocks_db_pool_connections\{[^}]*state="total"[^}]*\} [1-9]/);
      },
    );

    const bad: Array<[string, string, string, number]> = [
      ['malformed JSON', '{"task_type":"code",', 'application/json', 400],
      ['a wrong type', JSON.stringify({ task_type: 42, complexity: 'low' }), 'application/json', 400],
      ['an unknown complexity', JSON.stringify({ task_type: 'code', complexity: 'extreme' }), 'application/json', 400],
      ['a missing field', JSON.stringify({ complexity: 'low' }), 'application/json', 400],
      ['an extra field', JSON.stringify({ task_type: 'code', complexity: 'low', admin: true }), 'application/json', 400],
      [
        'context that is not an object',
        JSON.stringify({ task_type: 'code', complexity: 'low', context: 'prompt' }),
        'application/json',
        400,
      ],
      [
        'an oversized body',
        JSON.stringify({ task_type: 'code', complexity: 'low', context: { prompt: 'x'.repeat(1_100_000) } }),
        'application/json',
        413,
      ],
      ['a form body', 'task_type=code', 'application/x-www-form-urlencoded', 415],
      ['an unknown task type', JSON.stringify({ task_type: 'astrology', complexity: 'low' }), 'application/json', 422],
    ];
    it.each(bad)('answers %s with a 4xx problem and writes nothing', async (_label, body, contentType, status) => {
      const before = await eventCount();
      for (const role of ['gateway', 'autonomous'] as const) {
        const res = await fetch(`${blocks.urls[role]}/api/v1/autonomous/ai/route`, {
          method: 'POST',
          headers: { 'content-type': contentType },
          body,
        });
        expect(res.status).toBe(status);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = (await res.json()) as { status: number; code: string; detail: string };
        expect(problem.status).toBe(status);
        expect(problem.detail).toMatch(/\S/);
      }
      expect(await eventCount()).toBe(before);
    });

    const route = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${blocks.urls.gateway}/api/v1/autonomous/ai/route`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
    };

    it("applies the caller's tenant policy and records tenant and optimize in the event", async () => {
      const correlationId = `e2e-tenant-${Date.now()}`;
      const res = await route(
        { task_type: 'code', complexity: 'high', context: { prompt: 'Refactor this module.' } },
        { 'x-blocks-tenant': 'openai-only', 'x-correlation-id': correlationId },
      );
      expect(res.status).toBe(200);
      const openai = shippedModels.filter((m) => m.provider === 'openai').map((m) => m.model);
      expect(openai).toContain(res.body.selected_model);
      expect(res.body.routing_reason).toContain('optimizing quality');
      expect(res.body.routing_reason).toContain("provider not allowed for tenant 'openai-only'");
      const rows = await eventually(
        async () =>
          (
            await blocks.platform.db.query<{ payload: Record<string, unknown> }>('SELECT payload FROM events WHERE correlation_id = $1', [
              correlationId,
            ])
          ).rows,
        (found) => found.length === 1,
      );
      expect(rows[0]?.payload).toMatchObject({
        decision_id: res.body.decision_id,
        tenant: 'openai-only',
        optimize: 'quality',
        selected_model: res.body.selected_model,
      });
      expect(rows[0]?.payload).not.toHaveProperty('ranked');
    });

    it('explains a preferred model that fails a required capability, and what it chose instead', async () => {
      const res = await route({
        task_type: 'chat',
        complexity: 'low',
        preferred_model: 'claude-sonnet-4-20250514',
        context: { prompt: 'Answer in JSON.', capabilities: ['json_mode'], optimize: 'cost' },
      });
      expect(res.status).toBe(200);
      expect(res.body.selected_model).not.toBe('claude-sonnet-4-20250514');
      expect(res.body.routing_reason).toContain(
        `preferred model 'claude-sonnet-4-20250514' not honoured: it lacks json_mode, chose ${String(res.body.selected_model)} instead`,
      );
    });

    it.each([
      ['a tenant whose regions no model serves', {}, { 'x-blocks-tenant': 'eu-only' }, 'tenant_regions'],
      ['a max_cost nothing meets', { max_cost: 0 }, {}, 'max_cost'],
      ['a max_latency_ms nothing meets', { max_latency_ms: 1 }, {}, 'max_latency_ms'],
    ])(
      'answers %s with 422 NO_ELIGIBLE_MODEL listing what each constraint removed, writing nothing',
      async (_label, context, headers, constraint) => {
        const before = await eventCount();
        const res = await route({ task_type: 'code', complexity: 'low', context: { prompt: 'hi', ...context } }, headers);
        expect(res.status).toBe(422);
        expect(res.type).toMatch(/^application\/problem\+json/);
        expect(res.body.code).toBe('NO_ELIGIBLE_MODEL');
        const excluded = res.body.excluded as Record<string, string[]>;
        expect(Object.keys(excluded)).toEqual([constraint]);
        expect(excluded[constraint]?.length).toBeGreaterThanOrEqual(3);
        expect(res.body.detail).toContain(`${constraint} removed`);
        expect(await eventCount()).toBe(before);
      },
    );

    it.each([
      ['max_cost', -0.5],
      ['max_cost', 'cheap'],
      ['max_latency_ms', 1.5],
      ['max_latency_ms', -1],
      ['optimize', 'speed'],
      ['capabilities', 'vision'],
      ['capabilities', ['telepathy']],
      ['capabilities', ['vision', 'vision']],
    ])('answers context.%s = %j with a 400 naming the field', async (field, value) => {
      const res = await route({ task_type: 'code', complexity: 'low', context: { prompt: 'hi', [field]: value } });
      expect(res.status).toBe(400);
      expect(res.type).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.detail).toContain(`/context/${field}`);
    });

    it('serves health, readiness and the OpenAPI document on every port', async () => {
      for (const role of ['gateway', 'autonomous', 'collaborative'] as const) {
        const health = (await (await fetch(`${blocks.urls[role]}/health`)).json()) as {
          status: string;
          dependencies: Record<string, { status: string }>;
        };
        expect(health.status).toBe('healthy');
        expect(Object.values(health.dependencies).every((d) => d.status === 'up')).toBe(true);
        expect((await fetch(`${blocks.urls[role]}/health/ready`)).status).toBe(200);
        const doc = (await (await fetch(`${blocks.urls[role]}/docs/json`)).json()) as { paths: Record<string, unknown> };
        expect(doc.paths).toHaveProperty('/health');
        if (role !== 'collaborative') expect(doc.paths).toHaveProperty(['/api/v1/autonomous/ai/route']);
      }
    });
  });
}
