import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { appendEvent } from '../../../../src/platform/events/index.ts';
import { USAGE_CONSUMER } from '../../../../src/autonomous/ai-router/budgets/index.ts';
import { eventually, startTestBlocks, tempDir, testConfig } from '../../../support/blocks.ts';
import { blocksDatabases } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';
import { replica } from './support.ts';

const postgres = await probeService('postgres');

const keyIdOf = (key: string): string => `key_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`AI budgets and usage API (${setup.name})`, () => {
    const dir = tempDir('blocks-budgets');
    let blocks: RunningBlocks;
    let drop: () => Promise<void>;
    let base: string;

    const call = async (
      method: string,
      path: string,
      options: { tenant?: string; body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<Answer> => {
      const res = await fetch(`${base}/api/v1/autonomous/ai${path}`, {
        method,
        headers: {
          'x-blocks-tenant': options.tenant ?? 'acme',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...options.headers,
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    };
    const changeEvents = async (): Promise<Array<Record<string, unknown>>> =>
      (
        await blocks.platform.db.query<{ payload: Record<string, unknown> }>(
          "SELECT payload FROM events WHERE event_type = 'ai.budget.changed' ORDER BY sequence",
        )
      ).rows.map((row) => row.payload);

    beforeAll(async () => {
      const db = await setup.open();
      drop = db.drop;
      blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dir.path, ...db.env }), roles: ['autonomous'] });
      base = blocks.urls.autonomous as string;
    });
    afterAll(async () => {
      await blocks?.close();
      await drop?.();
      dir.remove();
    });

    describe('budgets', () => {
      it('creates a budget (201), replaces its limit (200), and writes ai.budget.changed for each change', async () => {
        const created = await call('PUT', '/budgets/tenant/acme/day', { body: { limit_usd: 10 } });
        expect(created.status).toBe(201);
        expect(created.headers.get('etag')).toBe('"1"');
        expect(created.body).toMatchObject({
          scope: 'tenant',
          subject: 'acme',
          period: 'day',
          limit_usd: 10,
          spent_usd: 0,
          held_usd: 0,
          version: 1,
        });

        const replaced = await call('PUT', '/budgets/tenant/acme/day', { body: { limit_usd: 1 }, headers: { 'if-match': '"1"' } });
        expect(replaced.status).toBe(200);
        expect(replaced.body).toMatchObject({ limit_usd: 1, version: 2 });
        expect(await changeEvents()).toEqual([
          { tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day', action: 'created', limit_usd: 10 },
          { tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day', action: 'updated', limit_usd: 1 },
        ]);
      });

      it('refuses a stale version with 412 and changes nothing', async () => {
        const before = await changeEvents();
        const stale = await call('PUT', '/budgets/tenant/acme/day', { body: { limit_usd: 5, version: 1 } });
        expect(stale.status).toBe(412);
        expect(stale.body).toMatchObject({ code: 'BUDGET_VERSION_MISMATCH', expected_version: 1, version: 2 });
        const staleHeader = await call('PUT', '/budgets/tenant/acme/day', { body: { limit_usd: 5 }, headers: { 'if-match': '"7"' } });
        expect(staleHeader.status).toBe(412);
        expect((await call('GET', '/budgets/tenant/acme/day')).body).toMatchObject({ limit_usd: 1, version: 2 });
        expect(await changeEvents()).toEqual(before);
      });

      it('answers bad input with 400 naming the field', async () => {
        const cases: Array<[string, string, unknown, Record<string, string>, string]> = [
          ['PUT', '/budgets/team/acme/day', { limit_usd: 1 }, {}, '/scope'],
          ['PUT', '/budgets/tenant/acme/week', { limit_usd: 1 }, {}, '/period'],
          ['PUT', '/budgets/tenant/acme/day', { limit_usd: -1 }, {}, '/limit_usd'],
          ['PUT', '/budgets/tenant/acme/day', { limit_usd: '1' }, {}, '/limit_usd'],
          ['PUT', '/budgets/tenant/acme/day', {}, {}, '/limit_usd'],
          ['PUT', '/budgets/tenant/acme/day', { limit_usd: 1, extra: true }, {}, '/extra'],
        ];
        for (const [method, path, body, headers, pointer] of cases) {
          const res = await call(method, path, { body, headers });
          expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
          expect(res.headers.get('content-type')).toContain('application/problem+json');
          expect(JSON.stringify(res.body.errors), path).toContain(pointer);
        }
        const badKey = await call('PUT', '/budgets/api_key/sk-live-123/day', { body: { limit_usd: 1 } });
        expect(badKey.status).toBe(400);
        expect(badKey.body).toMatchObject({ code: 'INVALID_BUDGET', field: 'subject' });
        const badIfMatch = await call('PUT', '/budgets/tenant/acme/day', { body: { limit_usd: 1 }, headers: { 'if-match': 'yesterday' } });
        expect(badIfMatch.body).toMatchObject({ status: 400, code: 'INVALID_BUDGET', field: 'If-Match' });
        expect((await call('GET', '/budgets?cursor=nonsense')).body).toMatchObject({
          status: 400,
          code: 'INVALID_BUDGET',
          field: 'cursor',
        });
        expect((await call('GET', '/budgets?limit=0')).status).toBe(400);
      });

      it("answers 404 for another tenant's budget, and never touches it", async () => {
        expect((await call('PUT', '/budgets/tenant/globex/day', { body: { limit_usd: 3 }, tenant: 'globex' })).status).toBe(201);
        const before = await changeEvents();

        for (const method of ['GET', 'DELETE'] as const) {
          const res = await call(method, '/budgets/tenant/globex/day');
          expect(res.status, method).toBe(404);
          expect(res.body.code).toBe('BUDGET_NOT_FOUND');
        }
        expect((await call('PUT', '/budgets/tenant/globex/day', { body: { limit_usd: 1000 } })).status).toBe(404);
        expect(await changeEvents()).toEqual(before);
        expect((await call('GET', '/budgets/tenant/globex/day', { tenant: 'globex' })).body).toMatchObject({ limit_usd: 3, version: 1 });
        expect(((await call('GET', '/budgets')).body.items as Array<{ subject: string }>).map((b) => b.subject)).not.toContain('globex');
      });

      it('lets a tenant cap its own API key or one it has seen calls from, and no other', async () => {
        const own = keyIdOf('sk-acme-admin');
        const unseen = keyIdOf('sk-someone-else');
        const res = await call('PUT', `/budgets/api_key/${unseen}/month`, {
          body: { limit_usd: 1 },
          headers: { authorization: 'Bearer sk-acme-admin' },
        });
        expect(res.status).toBe(404);
        expect(res.body.detail).toContain('has seen no call');
        const mine = await call('PUT', `/budgets/api_key/${own}/month`, {
          body: { limit_usd: 2 },
          headers: { authorization: 'Bearer sk-acme-admin' },
        });
        expect(mine.status).toBe(201);
        // Once it has a budget here the tenant may change it from anywhere.
        expect((await call('PUT', `/budgets/api_key/${own}/month`, { body: { limit_usd: 3 } })).status).toBe(200);
        // A call seen from a key (usage recorded) also makes it manageable.
        await blocks.platform.db.query(
          "INSERT INTO ai_usage_daily (tenant, api_key_id, model, day, requests) VALUES ('acme', $1, 'm', '2026-01-01', 1)",
          [unseen],
        );
        expect((await call('PUT', `/budgets/api_key/${unseen}/day`, { body: { limit_usd: 1 } })).status).toBe(201);
        expect((await call('PUT', `/budgets/api_key/${unseen}/day`, { body: { limit_usd: 1 }, tenant: 'globex' })).status).toBe(404);
        await blocks.platform.db.query('DELETE FROM ai_usage_daily');
      });

      it('lists the tenant budgets with the current spend, held money and reset time, a page at a time', async () => {
        // A guard on the same database, as the proxy would use it.
        const guard = replica(blocks.platform.db, blocks.platform.clock);
        await guard.reload();
        const hold = await guard.guard.reserve({ tenant: 'acme', apiKeyId: null }, 0.4);
        await hold.settle(0.25);
        await guard.guard.reserve({ tenant: 'acme', apiKeyId: null }, 0.1);

        const first = await call('GET', '/budgets?limit=2');
        expect(first.status).toBe(200);
        const items = first.body.items as Array<Record<string, unknown>>;
        expect(items).toHaveLength(2);
        const second = await call('GET', `/budgets?limit=2&cursor=${first.body.next_cursor as string}`);
        const all = [...items, ...(second.body.items as Array<Record<string, unknown>>)];
        expect(second.body.next_cursor).toBeNull();
        expect(all.map((b) => `${b.scope as string}/${b.subject as string}/${b.period as string}`).sort()).toEqual(
          [`api_key/${keyIdOf('sk-someone-else')}/day`, `api_key/${keyIdOf('sk-acme-admin')}/month`, 'tenant/acme/day'].sort(),
        );

        const day = all.find((b) => b.scope === 'tenant') as Record<string, unknown>;
        const now = new Date();
        const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
        expect(day).toMatchObject({
          limit_usd: 1,
          spent_usd: 0.25,
          held_usd: 0.1,
          remaining_usd: 0.65,
          period_start: now.toISOString().slice(0, 10),
          resets_at: tomorrow.toISOString(),
        });
        // The replica serving the API learned of the budget from its own change: a caller under it is limited.
        const refused = await guard.guard.reserve({ tenant: 'acme', apiKeyId: null }, 0.7).catch((e: unknown) => e);
        expect(refused).toMatchObject({ code: 'BUDGET_EXCEEDED', status: 402 });
      });

      it('deletes a budget (204), then answers 404 for it', async () => {
        const before = (await changeEvents()).length;
        expect((await call('DELETE', '/budgets/tenant/acme/day')).status).toBe(204);
        expect((await call('GET', '/budgets/tenant/acme/day')).status).toBe(404);
        expect((await call('DELETE', '/budgets/tenant/acme/day')).status).toBe(404);
        expect((await changeEvents()).slice(before)).toEqual([
          { tenant: 'acme', scope: 'tenant', subject: 'acme', period: 'day', action: 'deleted', limit_usd: null },
        ]);
      });
    });

    describe('usage', () => {
      const keyA = keyIdOf('sk-a');
      let sent = 0;
      const completed = (payload: Record<string, unknown>, timestamp: string, failed = false) =>
        blocks.platform.db.transaction(async (tx) => {
          sent += 1;
          return appendEvent(tx, {
            event_type: failed ? 'ai.request.failed' : 'ai.request.completed',
            source_service: 'test',
            key: payload.tenant as string,
            timestamp,
            payload: {
              request_id: crypto.randomUUID(),
              decision_id: null,
              api_key_id: null,
              provider: 'p',
              deployment: 'd',
              cached: false,
              prompt_tokens: 0,
              completion_tokens: 0,
              cost_usd: 0,
              ...payload,
            },
          });
        });
      const usage = (query: string, tenant = 'acme') => call('GET', `/usage?${query}`, { tenant });

      it('counts ai.request.completed and ai.request.failed per tenant, model, day and key', async () => {
        await completed(
          { tenant: 'acme', model: 'gpt-x', api_key_id: keyA, prompt_tokens: 100, completion_tokens: 20, cost_usd: 0.012 },
          '2026-03-01T10:00:00Z',
        );
        await completed(
          { tenant: 'acme', model: 'gpt-x', api_key_id: keyA, prompt_tokens: 50, completion_tokens: 10, cost_usd: 0.006 },
          '2026-03-01T23:59:59Z',
        );
        await completed({ tenant: 'acme', model: 'gpt-x', prompt_tokens: 50, completion_tokens: 10, cached: true }, '2026-03-02T00:00:00Z');
        await completed(
          { tenant: 'acme', model: 'claude-y', prompt_tokens: 10, completion_tokens: 5, cost_usd: 0.5 },
          '2026-03-02T12:00:00Z',
        );
        await completed(
          { tenant: 'acme', model: 'claude-y', cost_usd: 9, error_code: 'PROVIDER_TIMEOUT', status: 504 },
          '2026-03-02T13:00:00Z',
          true,
        );
        await completed(
          { tenant: 'globex', model: 'gpt-x', prompt_tokens: 1, completion_tokens: 1, cost_usd: 100 },
          '2026-03-01T10:00:00Z',
        );
        blocks.platform.relay.notify();

        const res = await eventually(
          () => usage('from=2026-03-01&to=2026-03-31'),
          (r) => (r.body.totals as { requests?: number } | undefined)?.requests === 5,
        );
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          tenant: 'acme',
          from: '2026-03-01',
          to: '2026-03-31',
          group_by: ['model', 'day'],
          items: [
            {
              model: 'claude-y',
              day: '2026-03-02',
              requests: 2,
              failures: 1,
              cached: 0,
              prompt_tokens: 10,
              completion_tokens: 5,
              cost_usd: 0.5,
            },
            {
              model: 'gpt-x',
              day: '2026-03-01',
              requests: 2,
              failures: 0,
              cached: 0,
              prompt_tokens: 150,
              completion_tokens: 30,
              cost_usd: 0.018,
            },
            {
              model: 'gpt-x',
              day: '2026-03-02',
              requests: 1,
              failures: 0,
              cached: 1,
              prompt_tokens: 50,
              completion_tokens: 10,
              cost_usd: 0,
            },
          ],
          totals: { requests: 5, failures: 1, cached: 1, prompt_tokens: 210, completion_tokens: 45, cost_usd: 0.518 },
        });

        const byKey = await usage('from=2026-03-01&to=2026-03-31&group_by=api_key');
        expect(byKey.body.items).toEqual([
          { api_key_id: keyA, requests: 2, failures: 0, cached: 0, prompt_tokens: 150, completion_tokens: 30, cost_usd: 0.018 },
          { api_key_id: null, requests: 3, failures: 1, cached: 1, prompt_tokens: 60, completion_tokens: 15, cost_usd: 0.5 },
        ]);
        const oneDay = await usage('from=2026-03-02&to=2026-03-02&group_by=');
        expect(oneDay.body.items).toEqual([]);
        expect(oneDay.body.totals).toEqual({
          requests: 3,
          failures: 1,
          cached: 1,
          prompt_tokens: 60,
          completion_tokens: 15,
          cost_usd: 0.5,
        });
        expect((await usage('from=2026-03-01&to=2026-03-31', 'globex')).body.totals).toMatchObject({ requests: 1, cost_usd: 100 });
        expect((await usage('from=2026-03-01&to=2026-03-31', 'initech')).body).toMatchObject({
          items: [],
          totals: { requests: 0, cost_usd: 0 },
        });
      });

      it('counts a redelivered event once', async () => {
        const event = await completed({ tenant: 'acme', model: 'gpt-x', cost_usd: 1 }, '2026-04-01T10:00:00Z');
        blocks.platform.relay.notify();
        await eventually(
          () => usage('from=2026-04-01&to=2026-04-01'),
          (r) => (r.body.totals as { requests: number }).requests === 1,
        );
        // The same event again, under another message id so no broker-side dedup can hide it: only the inbox stops it.
        await blocks.platform.bus.publish({ subject: event.event_type, id: crypto.randomUUID(), key: 'acme', data: event });
        await blocks.platform.bus.publish({ subject: event.event_type, id: event.event_id, key: 'acme', data: event });
        expect(
          await eventually(
            () => blocks.platform.bus.lag(USAGE_CONSUMER),
            (lag) => lag === 0,
          ),
        ).toBe(0);
        const inbox = await blocks.platform.db.query('SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2', [
          USAGE_CONSUMER,
          event.event_id,
        ]);
        expect(inbox.rowCount).toBe(1);
        expect((await usage('from=2026-04-01&to=2026-04-01')).body.totals).toMatchObject({ requests: 1, cost_usd: 1 });
        expect(sent).toBeGreaterThan(0);
      });

      it('answers bad parameters with 400 naming the parameter', async () => {
        const cases: Array<[string, string]> = [
          ['from=2026-02-30&to=2026-03-01', 'from'],
          ['from=2026-03-01&to=2026-13-01', 'to'],
          ['from=2026-03-02&to=2026-03-01', 'from'],
          ['from=2026-01-01&to=2027-01-02', 'to'],
          ['from=2026-01-01&group_by=model,tenant', 'group_by'],
          ['from=2026-01-01&group_by=model,model', 'group_by'],
        ];
        for (const [query, parameter] of cases) {
          const res = await usage(query);
          expect(res.status, query).toBe(400);
          expect(res.body, query).toMatchObject({ code: 'INVALID_USAGE_QUERY', parameter });
        }
        const shape = await usage('from=March');
        expect(shape.status).toBe(400);
        expect(JSON.stringify(shape.body.errors)).toContain('/from');
        expect((await usage('from=2026-01-01&to=2027-01-01')).status).toBe(200); // 366 days is allowed
        expect((await usage('tenant=globex')).status).toBe(400);
      });
    });
  });
}
