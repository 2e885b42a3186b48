import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks, Role } from '../../src/start.ts';
import { CLIENT_SCOPE, PUBLIC_SCOPE } from '../../src/platform/http/access.ts';
import { startTestBlocks, tempDir, testConfig } from '../support/blocks.ts';
import { testCredentials } from '../support/credentials.ts';
import { withMigratedPglite } from '../support/templates.ts';

// OWASP API9 (improper inventory management): every route a process serves is in the OpenAPI
// document it publishes, with its method; the only exceptions are the docs UI itself, HEAD twins
// that fastify adds to GET routes, and the gateway's pass-through to services that document
// their own routes.
describe('route inventory: nothing served undocumented', () => {
  const dir = tempDir('blocks-inventory');
  let blocks: RunningBlocks;
  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path) }) });
  });
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

  it.each<Role>(['gateway', 'autonomous', 'collaborative'])('%s: every served route is in /docs/json', async (role) => {
    const app = blocks.apps[role];
    if (app === undefined) throw new Error(`${role} is not running`);
    const doc = (await (await fetch(`${blocks.urls[role] as string}/docs/json`)).json()) as {
      paths: Record<
        string,
        Record<string, { security?: Array<Record<string, string[]>>; parameters?: Array<{ in: string; name: string }> }>
      >;
    };
    const served = app.routeInventory().filter((r) => !r.url.startsWith('/docs') && r.method !== 'HEAD' && !r.hidden);
    expect(served.length).toBeGreaterThanOrEqual(5);
    const undocumented = served
      .filter((r) => doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()] === undefined)
      .map((r) => `${r.method} ${r.url}`);
    expect(undocumented).toEqual([]);
    // And the other way round: the document names no route that is not served.
    const servedKeys = new Set(served.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
    const phantom = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((method) => !servedKeys.has(`${method} ${path}`))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(phantom).toEqual([]);
    // Each operation says who may call it, exactly as the access hook decides: no credential for
    // public and client routes, otherwise a bearer token, an API key or an OAuth token with the route's scope.
    const wrongSecurity = served.flatMap((r) => {
      const security = doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()]?.security;
      const open = r.scope === PUBLIC_SCOPE || r.scope === CLIENT_SCOPE;
      const expected = open ? [] : [{ bearer: [r.scope] }, { apiKey: [r.scope] }, { oauth2: [r.scope] }];
      return JSON.stringify(security) === JSON.stringify(expected) ? [] : [`${r.method} ${r.url}: ${JSON.stringify(security)}`];
    });
    expect(wrongSecurity).toEqual([]);
    expect(served.filter((r) => r.scope !== PUBLIC_SCOPE).length).toBeGreaterThan(0);
    // Idempotency-Key is documented exactly where the idempotency layer honours it: POST and PATCH with a credential.
    const wrongKeyHeader = served.flatMap((r) => {
      const parameters = doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()]?.parameters ?? [];
      const documented = parameters.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key');
      const honoured = (r.method === 'POST' || r.method === 'PATCH') && r.scope !== PUBLIC_SCOPE && r.scope !== CLIENT_SCOPE;
      return documented === honoured ? [] : [`${r.method} ${r.url}: documented ${documented}, honoured ${honoured}`];
    });
    expect(wrongKeyHeader).toEqual([]);
  });

  // OWASP API1/API5: the declaration is also what happens. Every route that names a scope refuses an
  // anonymous caller and a caller without that scope before its handler, whatever the method.
  it.each<Role>(['gateway', 'autonomous', 'collaborative'])('%s: every route with a scope refuses callers without it', async (role) => {
    const app = blocks.apps[role];
    if (app === undefined) throw new Error(`${role} is not running`);
    const noScope = await testCredentials(blocks).headers('inventory', []);
    const guarded = app
      .routeInventory()
      .filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS' && r.scope !== PUBLIC_SCOPE && r.scope !== CLIENT_SCOPE && !r.hidden);
    expect(guarded.length).toBeGreaterThanOrEqual(1);
    const open: string[] = [];
    for (const r of guarded) {
      const url = `${blocks.urls[role] as string}${r.url.replace(/:[A-Za-z0-9_]+/g, 'x').replace('*', 'x')}`;
      const anonymous = await fetch(url, { method: r.method });
      const unscoped = await fetch(url, { method: r.method, headers: noScope });
      const body = (await unscoped.json()) as { code?: string; scope?: string };
      if (anonymous.status !== 401 || unscoped.status !== 403 || body.code !== 'INSUFFICIENT_SCOPE' || body.scope !== r.scope) {
        open.push(`${r.method} ${r.url}: anonymous ${anonymous.status}, without ${r.scope} ${unscoped.status} ${body.code ?? ''}`);
      }
    }
    expect(open).toEqual([]);
  });

  it('hides only the pass-through routes, which are all on the gateway', () => {
    for (const role of ['autonomous', 'collaborative'] as const) {
      expect((blocks.apps[role]?.routeInventory() ?? []).filter((r) => r.hidden && !r.url.startsWith('/docs'))).toEqual([]);
    }
  });
});
