import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { stringify as toYaml } from 'yaml';
import type { RunningBlocks } from '../../../src/start.ts';
import type { Caller } from '../../../src/platform/http/caller.ts';
import { ACT_FOR_HEADER, encodeActingFor } from '../../../src/platform/http/delegation.ts';
import { createAutonomousClient, type AutonomousClient, type ServiceTransport } from '../../../src/platform/clients/autonomous-client.ts';
import { httpTransport, inProcessTransport } from '../../../src/platform/clients/transports.ts';
import { createServiceToken } from '../../../src/platform/clients/service-token.ts';
import { serviceCredentialsOf } from '../../../src/platform/clients/service-credentials.ts';
import { resolveKeyEncryptionKey } from '../../../src/core/identity/index.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { catalogModel } from '../../support/catalog-model.ts';
import { startFakeOpenAi, type FakeProvider } from '../../support/fake-providers/index.ts';
import { withMigratedPglite } from '../../support/templates.ts';

// The collaborative service calls the autonomous one for a caller through the client port. Both
// transports (into this process' app, over HTTP as a split deployment does) go through the
// called service's own access decision, with this process' service identity acting for the caller:
// the caller's tenant and scopes travel and are decided again, and nothing widens them.
describe('cross-service client: the autonomous service, called for a caller', () => {
  const dir = tempDir('blocks-service-client');
  let blocks: RunningBlocks;
  let fake: FakeProvider;
  let inProcess: AutonomousClient;
  let overHttp: AutonomousClient;
  let secret: Uint8Array;

  /** A caller as the access decision would have set it for a fresh key of `tenant` holding `scopes`. */
  const callerWith = async (tenant: string, scopes: string[]): Promise<Caller> => {
    const key = await blocks.identity.apiKeys.create(tenant, { name: 'caller', scopes, expiresAt: null }, { correlationId: 'test' });
    return { tenant, kind: 'api_key', subject: key.id, apiKeyId: key.id, clientId: null, scopes };
  };
  const clientOver = (autonomous: ServiceTransport, gateway: ServiceTransport, key = secret): AutonomousClient =>
    createAutonomousClient({
      transport: autonomous,
      token: createServiceToken({ credentials: serviceCredentialsOf(key, 'collaborative'), gateway, clock: blocks.platform.clock }),
    });
  const chat = { model: 'svc-model', messages: [{ role: 'user', content: 'hello' }] };

  beforeAll(async () => {
    fake = await startFakeOpenAi({ kind: 'answer' });
    const catalogFile = join(dir.path, 'models.yaml');
    writeFileSync(catalogFile, toYaml({ models: [catalogModel('svc-model')] }));
    const config = testConfig(
      { BLOCKS_DATA_DIR: withMigratedPglite(join(dir.path, 'data')) },
      { ai: { catalog_file: catalogFile, providers: { fake: { protocol: 'openai', base_url: fake.baseUrl } } } },
    );
    blocks = await startTestBlocks({ config });
    secret = resolveKeyEncryptionKey({ configured: config.auth.key_encryption_key, env: config.env, dataDir: config.data_dir });
    const app = (role: 'autonomous' | 'gateway') => () => blocks.apps[role] as NonNullable<(typeof blocks.apps)[typeof role]>;
    inProcess = clientOver(inProcessTransport(app('autonomous')), inProcessTransport(app('gateway')));
    overHttp = clientOver(httpTransport([blocks.urls.autonomous as string]), httpTransport([blocks.urls.gateway as string]));
  }, 60_000);
  afterAll(async () => {
    await blocks?.close();
    await fake?.close();
    dir.remove();
  });

  for (const [name, client] of [
    ['in process', () => inProcess],
    ['over HTTP', () => overHttp],
  ] as const) {
    it(`${name}: routes, completes and streams as the caller`, async () => {
      const caller = await callerWith('svc-a', ['ai:route', 'ai:invoke']);
      const decision = await client().route({ task_type: 'chat', complexity: 'low' }, caller);
      expect(decision.selected_model).toBe('svc-model');
      const completion = await client().complete(chat, caller);
      expect(completion.choices.length).toBe(1);
      const chunks: unknown[] = [];
      for await (const chunk of client().stream(chat, caller)) chunks.push(chunk);
      expect(chunks.length).toBeGreaterThan(1);
      // The provider was called for the caller's tenant: its usage is the tenant's.
      const usage = await blocks.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM ai_outcomes WHERE tenant = 'svc-a'");
      expect(usage.rows[0]?.n).toBeGreaterThan(0);
    });

    it(`${name}: never widens the caller: a scope its key lacks is refused though the call claims it`, async () => {
      const narrow = await callerWith('svc-b', ['ai:read']);
      const claimed: Caller = { ...narrow, scopes: ['ai:read', 'ai:route'] };
      await expect(client().route({ task_type: 'chat' }, claimed)).rejects.toMatchObject({ status: 403, code: 'INSUFFICIENT_SCOPE' });
    });

    it(`${name}: acts no more for a revoked key, nor for a key claimed under another tenant`, async () => {
      const caller = await callerWith('svc-c', ['ai:route']);
      await expect(client().route({ task_type: 'chat' }, { ...caller, tenant: 'svc-other' })).rejects.toMatchObject({
        status: 403,
        code: 'DELEGATION_REFUSED',
      });
      await blocks.identity.apiKeys.revoke('svc-c', caller.subject as string, { correlationId: 'test' });
      await expect(client().route({ task_type: 'chat' }, caller)).rejects.toMatchObject({ status: 403, code: 'DELEGATION_REFUSED' });
    });
  }

  it('carries no operator scope: a caller holding one is acted for without it', async () => {
    const operator = await callerWith('default', ['ai:models:write', 'ai:models:read']);
    const token = await createServiceToken({
      credentials: serviceCredentialsOf(secret, 'collaborative'),
      gateway: httpTransport([blocks.urls.gateway as string]),
      clock: blocks.platform.clock,
    })();
    const answer = await fetch(`${blocks.urls.autonomous as string}/api/v1/autonomous/ai/models/svc-model`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, [ACT_FOR_HEADER]: encodeActingFor(operator) },
    });
    expect(answer.status).toBe(403);
    expect(await answer.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:write' });
  });

  it('refuses anyone but a service identity naming a caller, and a malformed claim', async () => {
    const caller = await callerWith('svc-d', ['ai:route']);
    const everything = await blocks.identity.apiKeys.create(
      'svc-d',
      { name: 'wide', scopes: blocks.registry.scopes.tenantAdmin.slice(), expiresAt: null },
      { correlationId: 'test' },
    );
    const forged = await fetch(`${blocks.urls.autonomous as string}/api/v1/autonomous/ai/route`, {
      method: 'POST',
      headers: { 'x-api-key': everything.key, 'content-type': 'application/json', [ACT_FOR_HEADER]: encodeActingFor(caller) },
      body: JSON.stringify({ task_type: 'chat' }),
    });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ code: 'DELEGATION_REFUSED', reason: 'delegation_not_allowed' });
    const token = await createServiceToken({
      credentials: serviceCredentialsOf(secret, 'collaborative'),
      gateway: httpTransport([blocks.urls.gateway as string]),
      clock: blocks.platform.clock,
    })();
    const malformed = await fetch(`${blocks.urls.autonomous as string}/api/v1/autonomous/ai/route`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', [ACT_FOR_HEADER]: 'not-a-claim!' },
      body: JSON.stringify({ task_type: 'chat' }),
    });
    expect(malformed.status).toBe(403);
    expect(await malformed.json()).toMatchObject({ code: 'DELEGATION_REFUSED', reason: 'delegation_malformed' });
    // The service identity alone opens nothing: it holds no scope of a tenant.
    const alone = await fetch(`${blocks.urls.autonomous as string}/api/v1/autonomous/ai/route`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'chat' }),
    });
    expect(alone.status).toBe(403);
  });

  it('answers 503 SERVICE_IDENTITY_REFUSED when the process holds another key than the gateway', async () => {
    const stranger = clientOver(
      httpTransport([blocks.urls.autonomous as string]),
      httpTransport([blocks.urls.gateway as string]),
      new Uint8Array(32).fill(7),
    );
    const caller = await callerWith('svc-e', ['ai:route']);
    await expect(stranger.route({ task_type: 'chat' }, caller)).rejects.toMatchObject({ status: 503, code: 'SERVICE_IDENTITY_REFUSED' });
  });
});
