import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { createJwtVerifier } from '../../../src/core/identity/access/jwt-verifier.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { withMigratedPglite } from '../../support/templates.ts';

describe('the authorization server on the gateway (embedded)', () => {
  const dir = tempDir('blocks-oauth');
  let blocks: RunningBlocks;
  let gateway: string;

  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path) }), roles: ['gateway'] });
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
    const first = blocks.identity.firstStart();
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

  it("the first-start client's token opens the identity admin API of its tenant; a client's token holds only its client's scopes", async () => {
    const { clientId, clientSecret } = blocks.identity.firstStart() as { clientId: string; clientSecret: string };
    const res = await token({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
    const { access_token: accessToken } = (await res.json()) as { access_token: string };
    const admin = { authorization: `Bearer ${accessToken}` };

    const created = await fetch(`${gateway}/api/v1/identity/clients`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'catalog reader', scopes: ['ai:models:read'] }),
    });
    expect(created.status).toBe(201);
    const reader = (await created.json()) as { client_id: string; client_secret: string };
    // Made in the token's tenant, the first one.
    expect(await blocks.identity.authenticateClient(reader.client_id, reader.client_secret)).toMatchObject({ tenant: 'default' });

    const issued = await token({ grant_type: 'client_credentials', client_id: reader.client_id, client_secret: reader.client_secret });
    const readerToken = ((await issued.json()) as { access_token: string }).access_token;
    const refused = await fetch(`${gateway}/api/v1/identity/clients`, { headers: { authorization: `Bearer ${readerToken}` } });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'identity:admin' });
    expect(refused.headers.get('www-authenticate')).toContain('error="insufficient_scope"');

    // A token whose signature was tampered with is refused, as is an unsigned one.
    const [header, payload, signature] = accessToken.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const forged of [`${header}.${payload}.${flipped}`, `${header}.${payload}.`]) {
      const answer = await fetch(`${gateway}/api/v1/identity/clients`, { headers: { authorization: `Bearer ${forged}` } });
      expect(answer.status).toBe(401);
      expect(await answer.json()).toMatchObject({ code: 'INVALID_TOKEN' });
      expect(answer.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    expect((await fetch(`${gateway}/api/v1/identity/clients`, { headers: admin })).status).toBe(200);
  });

  it('refuses a wrong secret (401 invalid_client) and a scope the client does not hold (400 invalid_scope)', async () => {
    const { clientId, clientSecret } = blocks.identity.firstStart() as { clientId: string; clientSecret: string };
    const wrong = await token({ grant_type: 'client_credentials', client_id: clientId, client_secret: `${clientSecret}x` });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    const narrow = await blocks.identity.clients.create(
      'default',
      { name: 'narrow', scopes: ['ai:read'] },
      { correlationId: 'oauth-flow' },
    );
    const greedy = await token({
      grant_type: 'client_credentials',
      client_id: narrow.client_id,
      client_secret: narrow.client_secret,
      scope: 'ai:read ai:budgets',
    });
    expect(greedy.status).toBe(400);
    expect(await greedy.json()).toMatchObject({ error: 'invalid_scope' });
  });
});
