import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../../src/platform/config/schema.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { captureLogs, eventually, startTestBlocks, type CapturedLogs } from '../support/blocks.ts';
import { testCredentials } from '../support/credentials.ts';

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
    const creds = testCredentials({
      get identity() {
        return blocks.identity;
      },
    });
    beforeAll(async () => {
      environment = await makeEnvironment();
      logs = captureLogs();
      blocks = await startTestBlocks({ config: environment.config, logger: logs.logger });
    });
    afterAll(async () => {
      await blocks?.close();
      await environment?.cleanup();
    });

    // The AI router's events only: keys made for the tests and audits of refused requests are events too.
    const eventCount = async (): Promise<number> =>
      Number((await blocks.platform.db.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE event_type LIKE 'ai.%'")).rows[0]?.n);
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
          headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId, ...(await creds.headers()) },
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
      const key = await creds.headers();
      const before = await eventCount();
      for (const role of ['gateway', 'autonomous'] as const) {
        const res = await fetch(`${blocks.urls[role]}/api/v1/autonomous/ai/route`, {
          method: 'POST',
          headers: { 'content-type': contentType, ...key },
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

    /** POST /ai/route through the gateway with a key of `tenant`. */
    const route = async (body: unknown, tenant = 'default', headers: Record<string, string> = {}) => {
      const key = await creds.headers(tenant);
      const res = await fetch(`${blocks.urls.gateway}/api/v1/autonomous/ai/route`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...key, ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
    };

    it("applies the caller's tenant policy and records tenant and optimize in the event", async () => {
      const correlationId = `e2e-tenant-${Date.now()}`;
      const res = await route({ task_type: 'code', complexity: 'high', context: { prompt: 'Refactor this module.' } }, 'openai-only', {
        'x-correlation-id': correlationId,
      });
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
      ['a tenant whose regions no model serves', {}, 'eu-only', 'tenant_regions'],
      ['a max_cost nothing meets', { max_cost: 0 }, 'default', 'max_cost'],
      ['a max_latency_ms nothing meets', { max_latency_ms: 1 }, 'default', 'max_latency_ms'],
    ])(
      'answers %s with 422 NO_ELIGIBLE_MODEL listing what each constraint removed, writing nothing',
      async (_label, context, tenant, constraint) => {
        const before = await eventCount();
        const res = await route({ task_type: 'code', complexity: 'low', context: { prompt: 'hi', ...context } }, tenant);
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

    describe('the access decision, the same at the gateway and on the service port', () => {
      interface Answer {
        readonly status: number;
        readonly challenge: string | null;
        readonly body: Record<string, unknown>;
      }
      const at = async (
        role: 'gateway' | 'autonomous',
        path: string,
        init: { method?: string; body?: unknown; headers: Record<string, string> },
      ) => {
        const res = await fetch(`${blocks.urls[role]}/api/v1/autonomous/ai${path}`, {
          method: init.method ?? 'POST',
          headers: init.body === undefined ? init.headers : { 'content-type': 'application/json', ...init.headers },
          ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        });
        return {
          status: res.status,
          challenge: res.headers.get('www-authenticate'),
          body: (await res.json()) as Record<string, unknown>,
        } satisfies Answer;
      };
      const CODE = { task_type: 'code', complexity: 'low', context: { prompt: 'hi' } };
      const decisions = async (correlationId: string): Promise<number> =>
        Number(
          (
            await blocks.platform.db.query<{ n: string }>(
              "SELECT count(*) AS n FROM events WHERE event_type = 'ai.route.decided' AND correlation_id = $1",
              [correlationId],
            )
          ).rows[0]?.n,
        );
      const ROLES = ['gateway', 'autonomous'] as const;

      it.each(ROLES)(
        '%s: routing without a credential is 401 AUTHENTICATION_REQUIRED with a Bearer challenge, and audited',
        async (role) => {
          const correlationId = `e2e-anonymous-${role}-${randomUUID()}`;
          const res = await at(role, '/route', { body: CODE, headers: { 'x-correlation-id': correlationId } });
          expect(res.status).toBe(401);
          expect(res.challenge).toBe('Bearer realm="blocks"');
          expect(res.body).toMatchObject({ status: 401, code: 'AUTHENTICATION_REQUIRED' });
          const audited = await eventually(
            async () =>
              (
                await blocks.platform.db.query<{ payload: Record<string, unknown> }>(
                  "SELECT payload FROM events WHERE event_type = 'security.access.denied' AND correlation_id = $1",
                  [correlationId],
                )
              ).rows,
            (rows) => rows.length > 0,
          );
          expect(audited.map((row) => row.payload)).toEqual([
            expect.objectContaining({ reason: 'missing', status: 401, route: '/api/v1/autonomous/ai/route', tenant: null }),
          ]);
          expect(await decisions(correlationId)).toBe(0);
        },
      );

      it.each(ROLES)('%s: a key holding only ai:read may not route (403 INSUFFICIENT_SCOPE naming ai:route)', async (role) => {
        const correlationId = `e2e-scope-${role}-${randomUUID()}`;
        const res = await at(role, '/route', {
          body: CODE,
          headers: { ...(await creds.headers('default', ['ai:read'])), 'x-correlation-id': correlationId },
        });
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ status: 403, code: 'INSUFFICIENT_SCOPE', scope: 'ai:route' });
        expect(res.body.detail).toContain('ai:route');
        expect(await decisions(correlationId)).toBe(0);
        // The same key reads what it was granted.
        expect((await at(role, '/stats', { method: 'GET', headers: await creds.headers('default', ['ai:read']) })).status).toBe(200);
      });

      it.each(ROLES)('%s: a revoked key is refused at once (401 INVALID_CREDENTIALS)', async (role) => {
        const context = { correlationId: `e2e-revoke-${role}-${randomUUID()}` };
        const made = await blocks.identity.apiKeys.create('default', { name: 'revoked', scopes: ['ai:route'], expiresAt: null }, context);
        expect((await at(role, '/route', { body: CODE, headers: { 'x-api-key': made.key } })).status).toBe(200);
        await blocks.identity.apiKeys.revoke('default', made.id, context);
        const correlationId = `${context.correlationId}-after`;
        const res = await at(role, '/route', { body: CODE, headers: { 'x-api-key': made.key, 'x-correlation-id': correlationId } });
        expect(res.status).toBe(401);
        expect(res.challenge).toBe('Bearer realm="blocks"');
        expect(res.body).toMatchObject({ status: 401, code: 'INVALID_CREDENTIALS' });
        expect(await decisions(correlationId)).toBe(0);
      });

      it.each(ROLES)('%s: a key holding only ai:models:read lists the catalog but cannot change it', async (role) => {
        const readOnly = await creds.headers('default', ['ai:models:read']);
        const listed = await at(role, '/models?limit=1', { method: 'GET', headers: readOnly });
        expect(listed.status).toBe(200);
        const model = `e2e-${role}-coder`;
        const res = await at(role, '/models', {
          headers: readOnly,
          body: {
            model,
            provider: 'openai',
            task_types: ['code'],
            context_window: 64000,
            input_price_per_mtok: 0.01,
            output_price_per_mtok: 0.02,
            quality: { code: { low: 0.9, medium: 0.9, high: 0.9 } },
          },
        });
        expect(res.status).toBe(403);
        expect(res.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:write' });
        expect((await at(role, `/models/${model}`, { method: 'GET', headers: readOnly })).status).toBe(404);
      });

      it.each(ROLES)("%s: feedback with tenant B's key on tenant A's decision is 404, exactly like an unknown decision", async (role) => {
        const theirs = await at(role, '/route', { body: CODE, headers: await creds.headers('acme') });
        expect(theirs.status).toBe(200);
        const decisionId = theirs.body.decision_id as string;
        const foreign = await at(role, '/feedback', {
          body: { decision_id: decisionId, success: false },
          headers: await creds.headers('default'),
        });
        const unknownId = randomUUID();
        const unknown = await at(role, '/feedback', {
          body: { decision_id: unknownId, success: false },
          headers: await creds.headers('default'),
        });
        expect(foreign.status).toBe(404);
        expect(foreign.body).toMatchObject({ code: 'DECISION_NOT_FOUND', decision_id: decisionId });
        expect(foreign.body.detail).toBe((unknown.body.detail as string).replace(unknownId, decisionId));
        expect((await blocks.platform.db.query('SELECT 1 FROM ai_outcomes WHERE decision_id = $1', [decisionId])).rows).toEqual([]);
        // Its own tenant may rate it: the 404 was the tenant boundary, not a missing decision.
        const own = await at(role, '/feedback', { body: { decision_id: decisionId, success: true }, headers: await creds.headers('acme') });
        expect(own.status).toBe(201);
        expect(own.body.tenant).toBe('acme');
      });
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
