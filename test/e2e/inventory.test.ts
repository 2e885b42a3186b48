import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks, Role } from '../../src/start.ts';
import { startTestBlocks, tempDir, testConfig } from '../support/blocks.ts';

// OWASP API9 (improper inventory management): every route a process serves is in the OpenAPI
// document it publishes, with its method; the only exceptions are the docs UI itself, HEAD twins
// that fastify adds to GET routes, and the gateway's pass-through to services that document
// their own routes.
describe('route inventory: nothing served undocumented', () => {
  const dir = tempDir('blocks-inventory');
  let blocks: RunningBlocks;
  beforeAll(async () => {
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dir.path }) });
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
      paths: Record<string, Record<string, unknown>>;
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
  });

  it('hides only the pass-through routes, which are all on the gateway', () => {
    for (const role of ['autonomous', 'collaborative'] as const) {
      expect((blocks.apps[role]?.routeInventory() ?? []).filter((r) => r.hidden && !r.url.startsWith('/docs'))).toEqual([]);
    }
  });
});
