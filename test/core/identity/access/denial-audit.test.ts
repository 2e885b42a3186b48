import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { ACCESS_DENIED_EVENT } from '../../../../src/core/identity/index.ts';
import { eventually, startTestBlocks, testConfig } from '../../../support/blocks.ts';
import { testCredentials } from '../../../support/credentials.ts';

interface DeniedRow {
  readonly correlation_id: string;
  readonly source_service: string;
  readonly payload: Record<string, unknown>;
  readonly row: string;
}

// Every refused request leaves a `security.access.denied` event: who (when known), why, where from
// and which route, in the outbox like any event. Never the credential that was refused.
describe('audit of refused requests', () => {
  let blocks: RunningBlocks;

  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig({}, { auth: { tenants: { walled: { ip_allow: ['10.0.0.0/8'] } } } }) });
  });
  afterAll(async () => {
    await blocks?.close();
  });

  const denied = async (): Promise<DeniedRow[]> =>
    (
      await blocks.platform.db.query<DeniedRow>(
        `SELECT correlation_id, source_service, payload, row_to_json(e)::text AS row FROM events e
         WHERE event_type = $1 AND correlation_id LIKE 'deny-%' ORDER BY sequence`,
        [ACCESS_DENIED_EVENT],
      )
    ).rows;

  it('writes one event per refusal with reason, status, route, method, address and tenant, and never the credential', async () => {
    const creds = testCredentials(blocks);
    const reader = await creds.key('acme', ['ai:read']);
    const readerId = await creds.keyId('acme', ['ai:read']);
    const walled = await creds.key('walled', ['ai:models:read']);
    const walledId = await creds.keyId('walled', ['ai:models:read']);
    const forgedKey = `bk_${'A'.repeat(43)}`;
    const forgedToken = 'eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vbmUifQ.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl';
    const first = blocks.identity.firstStart();
    if (first === null) throw new Error('the gateway made no first-start client');
    const wrongSecret = `${first.clientSecret.slice(0, -4)}XXXX`;

    const gateway = blocks.urls.gateway as string;
    const autonomous = blocks.urls.autonomous as string;
    const send = async (id: string, url: string, init: RequestInit = {}): Promise<number> =>
      (await fetch(url, { ...init, headers: { 'x-correlation-id': `deny-${id}`, ...(init.headers as Record<string, string>) } })).status;

    const statuses = {
      missing: await send('missing', `${gateway}/api/v1/identity/api-keys`),
      invalid_key: await send('invalid_key', `${autonomous}/api/v1/autonomous/ai/models`, { headers: { 'x-api-key': forgedKey } }),
      invalid_token: await send('invalid_token', `${gateway}/api/v1/autonomous/ai/models`, {
        headers: { authorization: `Bearer ${forgedToken}` },
      }),
      ambiguous: await send('ambiguous', `${gateway}/api/v1/identity/api-keys`, {
        headers: { 'x-api-key': reader, authorization: `Bearer ${forgedToken}` },
      }),
      insufficient_scope: await send('insufficient_scope', `${gateway}/api/v1/identity/api-keys/00000000-0000-4000-8000-000000000000`, {
        method: 'DELETE',
        headers: { 'x-api-key': reader },
      }),
      tenant_mismatch: await send('tenant_mismatch', `${autonomous}/api/v1/autonomous/ai/stats`, {
        headers: { 'x-api-key': reader, 'x-blocks-tenant': 'globex' },
      }),
      ip_not_allowed: await send('ip_not_allowed', `${autonomous}/api/v1/autonomous/ai/models`, { headers: { 'x-api-key': walled } }),
      invalid_client: await send('invalid_client', `${gateway}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: first.clientId, client_secret: wrongSecret }).toString(),
      }),
    };
    expect(statuses).toEqual({
      missing: 401,
      invalid_key: 401,
      invalid_token: 401,
      ambiguous: 401,
      insufficient_scope: 403,
      tenant_mismatch: 403,
      ip_not_allowed: 403,
      invalid_client: 401,
    });
    // And a request that is allowed leaves none.
    expect(await send('allowed', `${autonomous}/api/v1/autonomous/ai/stats`, { headers: { 'x-api-key': reader } })).toBe(200);

    // Written in batches off the request path.
    const rows = await eventually(denied, (found) => found.length >= 8);
    const byId = Object.fromEntries(rows.map((row) => [row.correlation_id.slice('deny-'.length), row]));
    expect(Object.keys(byId).sort()).toEqual(Object.keys(statuses).sort());
    const anonymous = { tenant: null, subject: null, ip: '127.0.0.1' };
    expect(byId.missing?.payload).toEqual({
      ...anonymous,
      reason: 'missing',
      status: 401,
      method: 'GET',
      route: '/api/v1/identity/api-keys',
    });
    expect(byId.invalid_key?.payload).toEqual({
      ...anonymous,
      reason: 'invalid_key',
      status: 401,
      method: 'GET',
      route: '/api/v1/autonomous/ai/models',
    });
    expect(byId.invalid_token?.payload).toMatchObject({ ...anonymous, reason: 'invalid_token', status: 401 });
    expect(byId.ambiguous?.payload).toMatchObject({ ...anonymous, reason: 'ambiguous', status: 401 });
    // Refusals of an authenticated caller name it; the route is the pattern, not the id asked for.
    expect(byId.insufficient_scope?.payload).toEqual({
      tenant: 'acme',
      subject: readerId,
      ip: '127.0.0.1',
      reason: 'insufficient_scope',
      status: 403,
      method: 'DELETE',
      route: '/api/v1/identity/api-keys/:id',
    });
    expect(byId.tenant_mismatch?.payload).toMatchObject({ tenant: 'acme', subject: readerId, reason: 'tenant_mismatch', status: 403 });
    expect(byId.ip_not_allowed?.payload).toMatchObject({ tenant: 'walled', subject: walledId, reason: 'ip_not_allowed', status: 403 });
    expect(byId.invalid_client?.payload).toMatchObject({ ...anonymous, reason: 'invalid_client', status: 401, route: '/oauth/token' });
    expect(new Set(rows.map((row) => row.source_service))).toEqual(new Set(['core.identity']));

    const everything = rows.map((row) => row.row).join('\n');
    for (const secret of [forgedKey, reader, reader.slice(11), walled, walled.slice(11), forgedToken, wrongSecret, first.clientSecret]) {
      expect(everything).not.toContain(secret);
    }
  });
});
