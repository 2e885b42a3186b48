import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { createJwtVerifier } from '../../../src/platform/auth/jwt-verifier.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';

describe('the authorization server on the gateway (embedded)', () => {
  const dir = tempDir('blocks-oauth');
  let blocks: RunningBlocks;
  let gateway: string;

  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dir.path }), roles: ['gateway'] });
    gateway = blocks.urls.gateway as string;
  });
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  const token = (form: Record<string, string>) =>
    fetch(`${gateway}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });

  it("gives the first-start admin client a token that verifies through the gateway's own discovery and JWKS", async () => {
    const first = blocks.identity?.firstStart();
    expect(first).toBeTruthy();
    const { clientId, clientSecret } = first as NonNullable<typeof first>;
    const res = await token({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
      scope: 'identity:admin',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; token_type: string; scope: string };
    expect(body).toMatchObject({ token_type: 'Bearer', scope: 'identity:admin' });

    const discovery = (await (await fetch(`${gateway}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({
      issuer: gateway,
      token_endpoint: `${gateway}/oauth/token`,
      jwks_uri: `${gateway}/.well-known/jwks.json`,
    });
    const verifier = createJwtVerifier({ issuers: [{ issuer: gateway, audience: 'blocks', discovery: true }] });
    const verified = await verifier.verify(body.access_token);
    expect(verified).toMatchObject({ issuer: gateway, scopes: ['identity:admin'] });
  });

  it('refuses a wrong secret (401 invalid_client) and a scope the client does not hold (400 invalid_scope)', async () => {
    const { clientId, clientSecret } = blocks.identity?.firstStart() as { clientId: string; clientSecret: string };
    const wrong = await token({ grant_type: 'client_credentials', client_id: clientId, client_secret: `${clientSecret}x` });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    const greedy = await token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'ai:budgets' });
    expect(greedy.status).toBe(400);
    expect(await greedy.json()).toMatchObject({ error: 'invalid_scope' });
  });
});
