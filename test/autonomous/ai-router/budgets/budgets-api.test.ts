import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { appendEvent } from '../../../../src/platform/events/index.ts';
import { USAGE_CONSUMER } from '../../../../src/autonomous/ai-router/budgets/index.ts';
import { eventually, startTestBlocks, tempDir, testConfig } from '../../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../../support/credentials.ts';
import { blocksDatabases } from '../../../support/databases.ts';
import { probeService } from '../../../support/services.ts';
import { replica } from './support.ts';
import { withMigratedPglite } from '../../../support/templates.ts';

const postgres = await probeService('postgres');

/** Scopes of a key that may call models and read usage, but not touch budgets. */
const NO_BUDGETS = ['ai:invoke', 'ai:read'];

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
    let creds: TestCredentials;

    /** A call with a key of `tenant` ('acme') holding `scopes` (all), or with no credential when `anonymous`. */
    const call = async (
      method: string,
      path: string,
      options: { tenant?: string; scopes?: readonly string[]; anonymous?: boolean; body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<Answer> => {
      const res = await fetch(`${base}/api/v1/autonomous/ai${path}`, {
        method,
        headers: {
          ...(options.anonymous === true ? {} : await creds.headers(options.tenant ?? 'acme', options.scopes)),
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
      blocks = await startTestBlocks({
        config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path), ...db.env }),
        roles: ['autonomous'],
      });
      base = blocks.urls.autonomous as string;
      creds = testCredentials(blocks);
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
        // An api_key budget names an identity key by its id, never by the key itself nor by any other spelling.
        const ownId = await creds.keyId('acme');
        for (const subject of [
          await creds.key('acme'),
          'sk-live-123',
          ownId.toUpperCase(),
          ownId.replaceAll('-', ''),
          'key_0123456789abcdef',
        ]) {
          const badKey = await call('PUT', `/budgets/api_key/${subject}/day`, { body: { limit_usd: 1 } });
          expect(badKey.status, subject).toBe(400);
          expect(badKey.body, subject).toMatchObject({ code: 'INVALID_BUDGET', field: 'subject' });
          expect(badKey.body.detail, subject).toContain('UUID');
        }
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

      it('lets a tenant cap the identity key it calls with, or one of its keys it has seen calls from, and no other', async () => {
        const admin = { scopes: ['ai:budgets'] };
        const own = await creds.keyId('acme', admin.scopes);
        // A key of acme's that has made no call yet, and one of another tenant's.
        const unseen = await creds.keyId('acme', ['ai:invoke']);
        const foreign = await creds.keyId('globex');
        for (const subject of [unseen, foreign, crypto.randomUUID()]) {
          const res = await call('PUT', `/budgets/api_key/${subject}/month`, { body: { limit_usd: 1 }, ...admin });
          expect(res.status, subject).toBe(404);
          expect(res.body.detail, subject).toContain('has seen no call');
        }
        const mine = await call('PUT', `/budgets/api_key/${own}/month`, { body: { limit_usd: 2 }, ...admin });
        expect(mine.status).toBe(201);
        expect(mine.body).toMatchObject({ scope: 'api_key', subject: own, period: 'month', limit_usd: 2 });
        // Once it has a budget here, any key of the tenant allowed to manage budgets may change it.
        expect((await call('PUT', `/budgets/api_key/${own}/month`, { body: { limit_usd: 3 } })).status).toBe(200);
        // A call seen from a key (usage recorded) also makes it manageable.
        await blocks.platform.db.query(
          "INSERT INTO ai_usage_daily (tenant, api_key_id, model, day, requests) VALUES ('acme', $1, 'm', '2026-01-01', 1)",
          [unseen],
        );
        expect((await call('PUT', `/budgets/api_key/${unseen}/day`, { body: { limit_usd: 1 }, ...admin })).status).toBe(201);
        // Not by another tenant: it has seen no call from acme's key, and acme's budget on it is not globex's.
        const before = await changeEvents();
        expect((await call('PUT', `/budgets/api_key/${unseen}/day`, { body: { limit_usd: 1000 }, tenant: 'globex' })).status).toBe(404);
        for (const method of ['GET', 'DELETE'] as const) {
          expect((await call(method, `/budgets/api_key/${unseen}/day`, { tenant: 'globex' })).status, method).toBe(404);
        }
        expect(await changeEvents()).toEqual(before);
        expect((await call('GET', `/budgets/api_key/${unseen}/day`)).body).toMatchObject({ limit_usd: 1, version: 1 });
        await blocks.platform.db.query('DELETE FROM ai_usage_daily');
      });

      it('still reads and removes a budget on a key id from before identity, but sets none', async () => {
        const legacy = { tenant: 'acme', scope: 'api_key', subject: 'key_00112233445566aa', period: 'day' } as const;
        await replica(blocks.platform.db, blocks.platform.clock).put(legacy, 1);
        expect((await call('GET', `/budgets/api_key/${legacy.subject}/day`)).body).toMatchObject({ subject: legacy.subject, limit_usd: 1 });
        const put = await call('PUT', `/budgets/api_key/${legacy.subject}/day`, { body: { limit_usd: 2 } });
        expect(put.status).toBe(400);
        expect(put.body.detail).toContain('before identity');
        expect((await call('DELETE', `/budgets/api_key/${legacy.subject}/day`)).status).toBe(204);
        expect((await call('GET', `/budgets/api_key/${legacy.subject}/day`)).status).toBe(404);
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
          [
            `api_key/${await creds.keyId('acme', ['ai:invoke'])}/day`,
            `api_key/${await creds.keyId('acme', ['ai:budgets'])}/month`,
            'tenant/acme/day',
          ].sort(),
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
      let keyA: string;
      beforeAll(async () => {
        keyA = await creds.keyId('acme', ['ai:invoke']);
      });
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

      it('counts ai.request.completed and ai.request.failed per tenant, model, day and key, a failure at what it was charged', async () => {
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
        // A stream the client left mid-way: a failure, charged for what it was sent (the budget was too).
        await completed(
          {
            tenant: 'acme',
            model: 'claude-y',
            prompt_tokens: 20,
            completion_tokens: 4,
            cost_usd: 0.25,
            error_code: 'CLIENT_CLOSED_REQUEST',
            status: 499,
          },
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
              prompt_tokens: 30,
              completion_tokens: 9,
              cost_usd: 0.75,
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
          totals: { requests: 5, failures: 1, cached: 1, prompt_tokens: 230, completion_tokens: 49, cost_usd: 0.768 },
        });

        const byKey = await usage('from=2026-03-01&to=2026-03-31&group_by=api_key');
        expect(byKey.body.items).toEqual([
          { api_key_id: keyA, requests: 2, failures: 0, cached: 0, prompt_tokens: 150, completion_tokens: 30, cost_usd: 0.018 },
          { api_key_id: null, requests: 3, failures: 1, cached: 1, prompt_tokens: 80, completion_tokens: 19, cost_usd: 0.75 },
        ]);
        const oneDay = await usage('from=2026-03-02&to=2026-03-02&group_by=');
        expect(oneDay.body.items).toEqual([]);
        expect(oneDay.body.totals).toEqual({
          requests: 3,
          failures: 1,
          cached: 1,
          prompt_tokens: 80,
          completion_tokens: 19,
          cost_usd: 0.75,
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

    describe('access', () => {
      const refusedForScope = (res: Answer, scope: string, what: string): void => {
        expect(res.status, what).toBe(403);
        expect(res.body, what).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope });
      };

      it('a key without ai:budgets can neither read nor set budgets, and changes nothing; ai:budgets alone is enough', async () => {
        const before = await changeEvents();
        const ownId = await creds.keyId('acme', NO_BUDGETS);
        const attempts: Array<[string, string, unknown]> = [
          ['GET', '/budgets', undefined],
          ['GET', '/budgets/tenant/acme/month', undefined],
          ['PUT', '/budgets/tenant/acme/month', { limit_usd: 0 }],
          ['PUT', `/budgets/api_key/${ownId}/month`, { limit_usd: 0 }],
          ['DELETE', '/budgets/tenant/acme/month', undefined],
        ];
        for (const [method, path, body] of attempts) {
          refusedForScope(await call(method, path, { scopes: NO_BUDGETS, body }), 'ai:budgets', `${method} ${path}`);
        }
        expect(await changeEvents()).toEqual(before);
        expect((await call('GET', '/budgets/tenant/acme/month', { scopes: ['ai:budgets'] })).status).toBe(404);
        expect((await call('PUT', '/budgets/tenant/acme/month', { scopes: ['ai:budgets'], body: { limit_usd: 9 } })).status).toBe(201);
        expect((await call('GET', '/budgets', { scopes: ['ai:budgets'] })).status).toBe(200);
      });

      it('a key without ai:read cannot read usage; ai:read alone can', async () => {
        const query = '/usage?from=2026-03-01&to=2026-03-31';
        refusedForScope(await call('GET', query, { scopes: ['ai:budgets', 'ai:invoke'] }), 'ai:read', query);
        const allowed = await call('GET', query, { scopes: ['ai:read'] });
        expect(allowed.status).toBe(200);
        expect(allowed.body.tenant).toBe('acme');
      });

      it('without a credential every budgets and usage route answers 401', async () => {
        for (const [method, path] of [
          ['GET', '/budgets'],
          ['PUT', '/budgets/tenant/acme/month'],
          ['DELETE', '/budgets/tenant/acme/month'],
          ['GET', '/usage'],
        ] as const) {
          const res = await call(method, path, { anonymous: true, ...(method === 'PUT' ? { body: { limit_usd: 0 } } : {}) });
          expect(res.status, `${method} ${path}`).toBe(401);
          expect(res.body.code).toBe('AUTHENTICATION_REQUIRED');
        }
        expect((await call('GET', '/budgets/tenant/acme/month')).body).toMatchObject({ limit_usd: 9 });
      });

      it("another tenant's key sees none of a tenant's budgets or usage, cannot change them, and cannot claim its tenant", async () => {
        const acmeKey = await creds.keyId('acme', ['ai:budgets']);
        expect((await call('PUT', `/budgets/api_key/${acmeKey}/day`, { body: { limit_usd: 4 }, scopes: ['ai:budgets'] })).status).toBe(201);
        const before = await changeEvents();
        const globex = { tenant: 'globex' };

        const listed = (await call('GET', '/budgets', globex)).body.items as Array<{ subject: string }>;
        expect(listed.map((b) => b.subject)).toEqual(['globex']);
        for (const path of ['/budgets/tenant/acme/month', `/budgets/api_key/${acmeKey}/day`]) {
          for (const method of ['GET', 'DELETE'] as const) {
            const res = await call(method, path, globex);
            expect(res.status, `${method} ${path}`).toBe(404);
            expect(res.body.code).toBe('BUDGET_NOT_FOUND');
          }
          expect((await call('PUT', path, { ...globex, body: { limit_usd: 1000 } })).status, `PUT ${path}`).toBe(404);
        }
        expect(await changeEvents()).toEqual(before);
        expect((await call('GET', `/budgets/api_key/${acmeKey}/day`)).body).toMatchObject({ limit_usd: 4, version: 1 });
        expect((await call('GET', '/budgets/tenant/acme/month')).body).toMatchObject({ limit_usd: 9, version: 1 });

        // Its usage is its own: none of acme's keys appear in it.
        const byKey = await call('GET', '/usage?from=2026-03-01&to=2026-03-31&group_by=api_key', globex);
        expect(byKey.body).toMatchObject({ tenant: 'globex', totals: { requests: 1, cost_usd: 100 } });
        expect(byKey.body.items).toEqual([
          { api_key_id: null, requests: 1, failures: 0, cached: 0, prompt_tokens: 1, completion_tokens: 1, cost_usd: 100 },
        ]);

        // x-blocks-tenant no longer picks the tenant: naming one the key does not belong to is refused.
        for (const path of ['/budgets', '/usage']) {
          const claimed = await call('GET', path, { ...globex, headers: { 'x-blocks-tenant': 'acme' } });
          expect(claimed.status, path).toBe(403);
          expect(claimed.body.code).toBe('TENANT_MISMATCH');
        }
      });
    });
  });
}
