import { learningSuite } from './feedback.suite.ts';
import { tempDir, testConfig } from '../../../support/blocks.ts';
import { learningOverrides, writeLearningCatalog } from './learning.fixtures.ts';
import { withMigratedPglite } from '../../../support/templates.ts';

learningSuite('embedded defaults: PGlite, in-process bus and cache', async () => {
  const dir = tempDir('blocks-learning');
  const catalog = writeLearningCatalog();
  return {
    config: testConfig({ BLOCKS_DATA_DIR: withMigratedPglite(dir.path) }, learningOverrides(catalog.path)),
    cleanup: async () => {
      dir.remove();
      catalog.remove();
    },
  };
});
