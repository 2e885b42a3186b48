import { AI_ROUTE_OVERRIDES, aiRouteSuite } from './ai-route.suite.ts';
import { tempDir, testConfig } from '../support/blocks.ts';
import { withMigratedPglite } from '../support/templates.ts';

aiRouteSuite('embedded defaults: PGlite, in-process bus and cache', async () => {
  const dir = tempDir('blocks-e2e');
  return { config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path) }, AI_ROUTE_OVERRIDES), cleanup: async () => dir.remove() };
});
