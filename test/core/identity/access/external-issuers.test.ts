import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { startTestBlocks, testConfig } from '../../../support/blocks.ts';
import { testCredentials } from '../../../support/credentials.ts';
import { AUDIENCE, startExternalIdp, type ExternalIdp } from './idp.ts';

const now = (): number => Math.floor(Date.now() / 1000);

// Tokens of other OpenID providers (auth.external_issuers), checked by every process exactly as
// Blocks' own: issuer, audience, signature through the issuer's discovery and JWKS, then tenant and scope.
describe('external OIDC issuers (a real oidc-provider)', () => {
  let byClaim: ExternalIdp; // names the tenant in its `org` claim
  let fixed: ExternalIdp; // serves one tenant, configured
  let stranger: ExternalIdp; // not configured
  let blocks: RunningBlocks;
  const scopes = ['ai:models:read', 'identity:admin'];

  beforeAll(async () => {
    [byClaim, fixed, stranger] = await Promise.all([
      startExternalIdp(scopes, { org: 'acme' }),
      startExternalIdp(scopes),
      startExternalIdp(scopes, { tenant: 'acme' }),
    ]);
    const config = testConfig(
      {},
      {
        auth: {
          external_issuers: [
            { issuer: byClaim.issuer, audience: AUDIENCE, tenant_claim: 'org' },
            { issuer: fixed.issuer, audience: AUDIENCE, tenant: 'globex' },
          ],
        },
      },
    );
    blocks = await startTestBlocks({ config });
  });
  afterAll(async () => {
    await blocks?.close();
    await Promise.allSettled([byClaim?.close(), fixed?.close(), stranger?.close()]);
  });

  const get = async (url: string, token: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
    return {
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
      challenge: response.headers.get('www-authenticate'),
    };
  };
  const models = (role: 'gateway' | 'autonomous') => `${blocks.urls[role] as string}/api/v1/autonomous/ai/models`;
  const keysOf = () => `${blocks.urls.gateway as string}/api/v1/identity/api-keys`;
  const keyIds = (body: Record<string, unknown>) => (body.items as Array<{ id: string }>).map((item) => item.id);

  it("accepts an issuer's token on a protected route with the scopes it carries, on the gateway and on the service's own port", async () => {
    const token = await byClaim.token('ai:models:read');
    expect(await get(models('gateway'), token)).toMatchObject({ status: 200 });
    expect(await get(models('autonomous'), token)).toMatchObject({ status: 200 });
    // Only those scopes: the admin API needs identity:admin.
    const admin = await get(keysOf(), token);
    expect(admin).toMatchObject({ status: 403, body: { code: 'INSUFFICIENT_SCOPE', scope: 'identity:admin' } });
  });

  it('acts for the tenant its claim names, or the one configured for the issuer', async () => {
    const creds = testCredentials(blocks);
    const acmeKey = await creds.keyId('acme', ['ai:read']);
    const globexKey = await creds.keyId('globex', ['ai:read']);

    const asAcme = await get(keysOf(), await byClaim.token('identity:admin'));
    expect(asAcme.status).toBe(200);
    expect(keyIds(asAcme.body)).toEqual([acmeKey]);
    const asGlobex = await get(keysOf(), await fixed.token('identity:admin'));
    expect(asGlobex.status).toBe(200);
    expect(keyIds(asGlobex.body)).toEqual([globexKey]);
    // The tenant header may only repeat the token's tenant.
    expect(await get(keysOf(), await fixed.token('identity:admin'), { 'x-blocks-tenant': 'acme' })).toMatchObject({
      status: 403,
      body: { code: 'TENANT_MISMATCH' },
    });
  });

  it('refuses a token of an issuer that is not configured, and one of a configured issuer naming no valid tenant', async () => {
    const foreign = await get(models('gateway'), await stranger.token('ai:models:read'));
    expect(foreign).toMatchObject({ status: 401, body: { code: 'INVALID_TOKEN' } });
    expect(foreign.challenge).toContain('error="invalid_token"');
    expect(await get(models('autonomous'), await stranger.token('ai:models:read'))).toMatchObject({ status: 401 });

    const claims = { iss: byClaim.issuer, aud: AUDIENCE, sub: 'svc', scope: 'ai:models:read', iat: now(), exp: now() + 300 };
    const noTenant = await get(models('gateway'), await byClaim.sign(claims));
    expect(noTenant).toMatchObject({ status: 401, body: { code: 'INVALID_TOKEN' } });
    expect(String(noTenant.body.detail)).toMatch(/tenant/);
    expect(await get(models('gateway'), await byClaim.sign({ ...claims, org: '../Acme' }))).toMatchObject({ status: 401 });
    // Signed by the configured issuer's key, but for another audience.
    expect(await get(models('gateway'), await byClaim.sign({ ...claims, org: 'acme', aud: 'https://elsewhere.test' }))).toMatchObject({
      status: 401,
      body: { code: 'INVALID_TOKEN' },
    });
    // The same claims, properly addressed, pass: the refusals above are about what they changed.
    expect(await get(models('gateway'), await byClaim.sign({ ...claims, org: 'acme' }))).toMatchObject({ status: 200 });
  });
});
