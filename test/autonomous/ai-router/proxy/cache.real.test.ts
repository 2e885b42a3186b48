import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { probeRealServices, realServicesEnv } from '../../../support/real-services.ts';
import { serviceUrls } from '../../../support/services.ts';
import { responseCacheSuite } from './cache.suite.ts';

const available = await probeRealServices();

describe.skipIf(!available)('real services', () => {
  responseCacheSuite('L1 + Redis cache, PostgreSQL, NATS', async () => {
    const services = await realServicesEnv('nats');
    const prefix = services.env['BLOCKS__cache__key_prefix'] as string;
    const redis = new Redis(serviceUrls.redis);
    return {
      options: { env: services.env },
      storedKeys: () => redis.keys(`${prefix}*`),
      cleanup: async () => {
        redis.disconnect();
        await services.cleanup();
      },
    };
  });
});
