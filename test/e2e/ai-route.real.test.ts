import { describe } from 'vitest';
import { AI_ROUTE_OVERRIDES, aiRouteSuite } from './ai-route.suite.ts';
import { testConfig } from '../support/blocks.ts';
import { probeRealServices, realServicesEnv } from '../support/real-services.ts';

const available = await probeRealServices();

describe.skipIf(!available)('real services', () => {
  for (const bus of ['nats', 'redis'] as const) {
    aiRouteSuite(`PostgreSQL, ${bus === 'nats' ? 'NATS JetStream' : 'Redis Streams'} bus, Redis cache`, async () => {
      const services = await realServicesEnv(bus);
      return { config: testConfig(services.env, AI_ROUTE_OVERRIDES), cleanup: () => services.cleanup() };
    });
  }
});
