import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import type { IdentityModule } from '../../../src/core/identity/index.ts';
import { eventually, startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials } from '../../support/credentials.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../support/real-services.ts';

const available = await probeRealServices();

describe.skipIf(!available)('identity across two gateway replicas (PostgreSQL, NATS)', () => {
  let services: RealServicesEnv;
  let a: RunningBlocks;
  let b: RunningBlocks;
  const identityOf = (blocks: RunningBlocks): IdentityModule => blocks.identity;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const config = testConfig(services.env);
    // Started together on an empty database: both try to make the first tenant.
    [a, b] = await Promise.all([startTestBlocks({ config, roles: ['gateway'] }), startTestBlocks({ config, roles: ['gateway'] })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await services?.cleanup();
  });

  it('makes exactly one first-start admin client when replicas start together', async () => {
    const firsts = [identityOf(a).firstStart(), identityOf(b).firstStart()].filter((f) => f !== null);
    expect(firsts).toHaveLength(1);
    const { rows } = await a.platform.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM oauth_clients WHERE NOT ('service' = ANY (roles))",
    );
    expect(rows[0]?.n).toBe(1);
    // And one identity per calling service, however many gateways registered it at once.
    const services = await a.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM oauth_clients WHERE 'service' = ANY (roles)");
    expect(services.rows[0]?.n).toBe(2);
  });

  it('a key revoked on one replica is refused by the other at once, though the other had it cached', async () => {
    const admin = await testCredentials(a).headers('acme', ['identity:admin', 'ai:invoke']);
    const res = await fetch(`${a.urls.gateway}/api/v1/identity/api-keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...admin },
      body: JSON.stringify({ name: 'shared', scopes: ['ai:invoke'] }),
    });
    expect(res.status).toBe(201);
    const { id, key } = (await res.json()) as { id: string; key: string };
    expect(await identityOf(b).verifyApiKey(key)).toMatchObject({ tenant: 'acme', keyId: id }); // cached on b now

    expect((await fetch(`${a.urls.gateway}/api/v1/identity/api-keys/${id}`, { method: 'DELETE', headers: admin })).status).toBe(200);
    expect(await identityOf(a).verifyApiKey(key)).toBeNull();
    // b caches a verified key for 60 s: gone well within that, only the revocation event can have removed it.
    const onB = await eventually(
      () => identityOf(b).verifyApiKey(key),
      (v) => v === null,
      5_000,
    );
    expect(onB).toBeNull();
  });
});
