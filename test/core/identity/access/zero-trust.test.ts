import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { eventually, startTestBlocks, tempDir, testConfig } from '../../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../../support/credentials.ts';
import { createTestDatabase, type TestDatabase } from '../../../support/postgres.ts';
import { probeService } from '../../../support/services.ts';

const postgres = await probeService('postgres');

interface Answer {
  readonly status: number;
  readonly code: unknown;
  readonly scope: unknown;
  readonly challenge: string | null;
}

// Every process decides access itself: the autonomous service, reached on its own port without the
// gateway, answers every caller exactly as the gateway does. Gateway and service are two Blocks
// instances sharing only the database, as in a split deployment.
describe.skipIf(!postgres.ok)('zero trust in every process: the service on its own port decides like the gateway', () => {
  const dir = tempDir('blocks-zero-trust');
  let db: TestDatabase;
  let service: RunningBlocks;
  let gateway: RunningBlocks;
  let creds: TestCredentials;
  const ISSUER = 'https://blocks.zero-trust.test';

  beforeAll(async () => {
    db = await createTestDatabase('blocks_zero_trust');
    const env = { DATABASE_URL: db.url, BLOCKS_DATA_DIR: dir.path };
    // Both must agree on the `iss` of Blocks' tokens: the gateway's URL is only known once it listens.
    service = await startTestBlocks({ config: testConfig(env, { auth: { issuer: ISSUER } }), roles: ['autonomous'] });
    gateway = await startTestBlocks({
      config: testConfig(env, { auth: { issuer: ISSUER }, services: { autonomous: { url: service.urls.autonomous } } }),
      roles: ['gateway'],
    });
    creds = testCredentials(gateway);
  });
  afterAll(async () => {
    await gateway?.close();
    await service?.close();
    await db?.drop();
    dir.remove();
  });

  /** A token from the gateway's /oauth/token for a client of `tenant` holding `scopes`. */
  const tokenFor = async (tenant: string, scopes: string[]): Promise<string> => {
    const client = await gateway.identity.clients.create(tenant, { name: 'zero-trust', scopes }, { correlationId: 'zero-trust' });
    const response = await fetch(`${gateway.urls.gateway as string}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: client.client_secret }),
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { access_token: string }).access_token;
  };

  const ask = async (base: string, headers: Record<string, string>): Promise<Answer> => {
    const response = await fetch(`${base}/api/v1/autonomous/ai/models`, { headers });
    const body = (await response.json()) as Record<string, unknown>;
    return { status: response.status, code: body.code, scope: body.scope, challenge: response.headers.get('www-authenticate') };
  };

  it('answers each caller the same on the service port as through the gateway', async () => {
    const revoked = await creds.key('acme', ['ai:models:read', 'ai:read']);
    await gateway.identity.apiKeys.revoke('acme', await creds.keyId('acme', ['ai:models:read', 'ai:read']), {
      correlationId: 'zero-trust',
    });
    const cases: Record<string, { headers: Record<string, string>; expected: Partial<Answer> }> = {
      'no credential': { headers: {}, expected: { status: 401, code: 'AUTHENTICATION_REQUIRED' } },
      'unknown key': { headers: { 'x-api-key': `bk_${'Z'.repeat(43)}` }, expected: { status: 401, code: 'INVALID_CREDENTIALS' } },
      'revoked key': { headers: { 'x-api-key': revoked }, expected: { status: 401, code: 'INVALID_CREDENTIALS' } },
      'basic auth': { headers: { authorization: 'Basic dXNlcjpwYXNz' }, expected: { status: 401, code: 'INVALID_CREDENTIALS' } },
      'two credentials': {
        headers: { ...(await creds.headers('acme', ['ai:models:read'])), authorization: 'Bearer x.y.z' },
        expected: { status: 401, code: 'INVALID_CREDENTIALS' },
      },
      'forged token': {
        headers: { authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' },
        expected: { status: 401, code: 'INVALID_TOKEN' },
      },
      'key without the scope': {
        headers: await creds.headers('acme', ['ai:read']),
        expected: { status: 403, code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:read' },
      },
      'token without the scope': {
        headers: { authorization: `Bearer ${await tokenFor('acme', ['ai:read'])}` },
        expected: { status: 403, code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:read' },
      },
      'another tenant named': {
        headers: { ...(await creds.headers('acme', ['ai:models:read'])), 'x-blocks-tenant': 'globex' },
        expected: { status: 403, code: 'TENANT_MISMATCH' },
      },
      'key with the scope': { headers: await creds.headers('acme', ['ai:models:read']), expected: { status: 200 } },
      'token with the scope': {
        headers: { authorization: `Bearer ${await tokenFor('acme', ['ai:models:read'])}` },
        expected: { status: 200 },
      },
    };
    const viaService: Record<string, Answer> = {};
    const viaGateway: Record<string, Answer> = {};
    for (const [name, { headers }] of Object.entries(cases)) {
      viaService[name] = await ask(service.urls.autonomous as string, headers);
      viaGateway[name] = await ask(gateway.urls.gateway as string, headers);
    }
    for (const [name, { expected }] of Object.entries(cases)) {
      expect({ name, ...viaService[name] }).toMatchObject({ name, ...expected });
    }
    expect(viaService).toEqual(viaGateway);
    // A 401 says how to authenticate; a token refused says why.
    expect(viaService['no credential']?.challenge).toBe('Bearer realm="blocks"');
    expect(viaService['forged token']?.challenge).toContain('error="invalid_token"');
    expect(viaService['key without the scope']?.challenge).toContain('error="insufficient_scope"');
  });

  it("refuses on the service what only the gateway's pass-through would let by: the service checks the scope itself", async () => {
    // The gateway does not know the service's scopes: it passes any authenticated caller on, and
    // the refusal comes from the service process (its own audit trail records it).
    const headers = { ...(await creds.headers('acme', ['ai:read'])), 'x-correlation-id': 'zero-trust-pass-through' };
    expect(await ask(gateway.urls.gateway as string, headers)).toMatchObject({ status: 403, code: 'INSUFFICIENT_SCOPE' });
    const audit = async () =>
      (
        await service.platform.db.query<{ payload: { reason: string; route: string } }>(
          "SELECT payload FROM events WHERE event_type = 'security.access.denied' AND correlation_id = 'zero-trust-pass-through'",
        )
      ).rows;
    const rows = await eventually(audit, (found) => found.length > 0);
    expect(rows.map((row) => row.payload)).toEqual([
      expect.objectContaining({ reason: 'insufficient_scope', route: '/api/v1/autonomous/ai/models' }),
    ]);
  });
});
