import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { RunningBlocks } from '../../../src/start.ts';
import type { FirstStart } from '../../../src/core/identity/index.ts';
import { createRegistry } from '../../../src/modules.ts';
import { eventually, startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { testCredentials } from '../../support/credentials.ts';
import { testRegistry } from '../../support/registry.ts';

// A new capability is a folder whose index.ts exports a manifest, plus one line of registration.
// The example module (test/support/example-module) is that folder; these tests prove what its
// manifest alone brings: its route and scope, its error, its config section, its migration, its
// consumer, its place in the service info and the OpenAPI document, and its scopes reaching the
// principals an earlier start made, by rule.
const COLLECTION = '/api/v1/collaborative/example/notes';

describe('a module added to a deployment that ran without it', () => {
  const dir = tempDir('blocks-example-module');
  const dataDir = join(dir.path, 'data');
  let blocks: RunningBlocks;
  let first: FirstStart;
  let tenantAdmin: { client_id: string; client_secret: string };

  const token = async (client: { client_id: string; client_secret: string }): Promise<{ scope: string; access_token: string }> => {
    const answer = await fetch(`${blocks.urls.gateway as string}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...client }).toString(),
    });
    expect(answer.status).toBe(200);
    return (await answer.json()) as { scope: string; access_token: string };
  };

  beforeAll(async () => {
    // The first start knows the built-in modules only: the operator client and a tenant's admin client are made then.
    const before = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dataDir }), registry: createRegistry() });
    try {
      first = before.identity.firstStart() as FirstStart;
      const operatorKey = await testCredentials(before).headers('default', before.registry.scopes.known);
      const made = await fetch(`${before.urls.gateway as string}/api/v1/identity/tenants`, {
        method: 'POST',
        headers: { ...operatorKey, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'late', name: 'Late tenant' }),
      });
      expect(made.status).toBe(201);
      tenantAdmin = ((await made.json()) as { admin_client: typeof tenantAdmin }).admin_client;
    } finally {
      await before.close();
    }
    // The next start has the example module, its title limit configured lower than its default.
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dataDir, BLOCKS__EXAMPLE__MAX_TITLE_LENGTH: '12' }) });
  }, 120_000);
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it("gives the operator client and a tenant's admin client the new module's scopes, by their roles", async () => {
    const operator = await token({ client_id: first.clientId, client_secret: first.clientSecret });
    expect(operator.scope.split(' ')).toEqual(expect.arrayContaining(['example:read', 'example:write', 'tenants:admin']));
    const admin = await token(tenantAdmin);
    expect(admin.scope.split(' ')).toEqual(expect.arrayContaining(['example:read', 'example:write', 'identity:admin']));
    expect(admin.scope.split(' ')).not.toContain('tenants:admin');
    // And they act with them: the tenant's admin writes a note in its own tenant.
    const note = await fetch(`${blocks.urls.gateway as string}${COLLECTION}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'by the admin' }),
    });
    expect(note.status).toBe(201);
  });

  it('serves its routes under its prefix, with its scopes, its config section and its error', async () => {
    const creds = testCredentials(blocks);
    const writer = await creds.headers('notes', ['example:write', 'example:read']);
    const reader = await creds.headers('notes', ['example:read']);
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(`${blocks.urls.collaborative as string}${COLLECTION}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await post(writer, { title: 'Short title', tags: ['a'] });
    expect(created.status).toBe(201);
    const note = (await created.json()) as { id: string; title: string; tags: string[] };
    expect(note).toMatchObject({ title: 'Short title', tags: ['a'] });
    // example.max_title_length is 12 here: the section's value shaped the route's schema.
    const long = await post(writer, { title: 'Thirteen char' });
    expect(long.status).toBe(400);
    expect(await long.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await post(reader, { title: 'x' })).status).toBe(403);
    const missing = await fetch(`${blocks.urls.collaborative as string}${COLLECTION}/0190f1e2-0000-7000-8000-000000000000`, {
      headers: reader,
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'EXAMPLE_NOTE_NOT_FOUND' });
    const page = (await (await fetch(`${blocks.urls.collaborative as string}${COLLECTION}?limit=1`, { headers: reader })).json()) as {
      items: Array<{ id: string }>;
    };
    expect(page.items.map((item) => item.id)).toEqual([note.id]);
    const badCursor = await fetch(`${blocks.urls.collaborative as string}${COLLECTION}?cursor=nope`, { headers: reader });
    expect(await badCursor.json()).toMatchObject({ status: 400, code: 'INVALID_CURSOR' });
  });

  it('ran its migration under its own name, and its consumer counts the events its changes wrote', async () => {
    const { rows } = await blocks.platform.db.query<{ module: string; version: number }>(
      "SELECT module, version FROM schema_migrations WHERE module = 'example'",
    );
    expect(rows).toEqual([{ module: 'example', version: 1 }]);
    const creds = testCredentials(blocks);
    const headers = { ...(await creds.headers('counted', ['example:write'])), 'content-type': 'application/json' };
    for (const title of ['one', 'two', 'three']) {
      const answer = await fetch(`${blocks.urls.gateway as string}${COLLECTION}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ title }),
      });
      expect(answer.status).toBe(201);
    }
    const counted = await eventually(
      async () =>
        (await blocks.platform.db.query<{ created: number }>("SELECT created FROM example_note_counts WHERE tenant = 'counted'")).rows,
      (found) => found[0]?.created === 3,
    );
    expect(counted).toEqual([{ created: 3 }]);
  });

  it('appears in its service info and, as a tag with its routes, in the OpenAPI document', async () => {
    const headers = await testCredentials(blocks).headers('default', ['service:read']);
    const info = (await (await fetch(`${blocks.urls.collaborative as string}/api/v1/collaborative`, { headers })).json()) as {
      modules: string[];
    };
    expect(info.modules).toEqual(['example']);
    const doc = (await (await fetch(`${blocks.urls.collaborative as string}/docs/json`)).json()) as {
      tags: Array<{ name: string; description: string }>;
      paths: Record<string, Record<string, { tags?: string[] }>>;
    };
    expect(doc.tags).toContainEqual({ name: 'example', description: testRegistry.get('example').description });
    expect(doc.paths[`${COLLECTION}/{id}`]?.['patch']?.tags).toEqual(['example']);
  });
});
