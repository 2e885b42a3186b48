import { describe } from 'vitest';
import { learningSuite } from './feedback.suite.ts';
import { testConfig } from '../../../support/blocks.ts';
import { probeRealServices, realServicesEnv } from '../../../support/real-services.ts';
import { learningOverrides, writeLearningCatalog } from './learning.fixtures.ts';

const available = await probeRealServices();

describe.skipIf(!available)('real services', () => {
  learningSuite('PostgreSQL, NATS JetStream bus, Redis cache', async () => {
    const services = await realServicesEnv('nats');
    const catalog = writeLearningCatalog();
    return {
      config: testConfig(services.env, learningOverrides(catalog.path)),
      cleanup: async () => {
        await services.cleanup();
        catalog.remove();
      },
    };
  });
});
