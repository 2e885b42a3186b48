import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { eventually, startTestBlocks, testConfig } from '../../../support/blocks.ts';
import { testCredentials } from '../../../support/credentials.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../../support/real-services.ts';

const available = await probeRealServices();

// Each replica caches verified keys for a minute; a revocation must not wait for that. Two whole
// Blocks (gateway and services) on one PostgreSQL and one NATS, as two replicas of a deployment.
describe.skipIf(!available)('a key revoked on one replica is refused by the other at once (PostgreSQL, NATS)', () => {
  let services: RealServicesEnv;
  let a: RunningBlocks;
  let b: RunningBlocks;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    const config = testConfig(services.env);
    a = await startTestBlocks({ config });
    b = await startTestBlocks({ config });
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await services?.cleanup();
  });

  const status = async (url: string, headers: Record<string, string>): Promise<number> =>
    (await fetch(`${url}/api/v1/autonomous/ai/models`, { headers })).status;

  it('refuses the key on every port of replica B once replica A has revoked it, and only that key', async () => {
    const creds = testCredentials(a);
    const doomed = await creds.headers('acme', ['ai:models:read']);
    const doomedId = await creds.keyId('acme', ['ai:models:read']);
    const other = await creds.headers('acme', ['ai:models:read', 'ai:read']);
    // Revoking a key needs every scope it holds (docs/security.md, acting on a principal).
    const admin = await creds.headers('acme', ['identity:admin', 'ai:models:read']);
    const onB = [b.urls.gateway as string, b.urls.autonomous as string];
    // B verifies both keys now, and keeps them in its cache.
    for (const url of onB) {
      expect(await status(url, doomed)).toBe(200);
      expect(await status(url, other)).toBe(200);
    }

    const revoke = await fetch(`${a.urls.gateway as string}/api/v1/identity/api-keys/${doomedId}`, { method: 'DELETE', headers: admin });
    expect(revoke.status).toBe(200);
    expect(await status(a.urls.gateway as string, doomed)).toBe(401);

    // Well inside B's one-minute cache: only the revocation event can have removed the key there.
    for (const url of onB) {
      expect(
        await eventually(
          () => status(url, doomed),
          (s) => s === 401,
          5_000,
        ),
      ).toBe(401);
    }
    const refused = await fetch(`${b.urls.autonomous as string}/api/v1/autonomous/ai/models`, { headers: doomed });
    expect(await refused.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    for (const url of onB) expect(await status(url, other)).toBe(200);
  });
});
