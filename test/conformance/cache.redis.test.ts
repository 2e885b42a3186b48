import { afterAll, beforeAll, describe } from 'vitest';
import { Redis } from 'ioredis';
import { createMemoryBus } from '../../src/platform/bus/memory.ts';
import type { EventBus } from '../../src/platform/bus/port.ts';
import { createRedisCache } from '../../src/platform/cache/redis.ts';
import { probeService, uniqueName } from '../support/services.ts';
import { cacheSuite } from './cache.suite.ts';

const svc = await probeService('redis');

describe.skipIf(!svc.ok)('redis cache adapter', () => {
  let bus: EventBus;
  const prefixes: string[] = [];

  beforeAll(() => {
    bus = createMemoryBus();
  });

  afterAll(async () => {
    await bus.close();
    const redis = new Redis(svc.url);
    try {
      for (const prefix of prefixes) {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
      }
    } finally {
      await redis.quit();
    }
  });

  cacheSuite(
    'redis',
    ({ maxEntries, defaultTtlMs }) => {
      const keyPrefix = `${uniqueName('cachesuite')}:`;
      prefixes.push(keyPrefix);
      return createRedisCache({
        url: svc.url,
        keyPrefix,
        maxL1Entries: maxEntries,
        defaultTtlMs,
        bus,
      });
    },
    {
      skip: [
        {
          reason:
            'maxEntries bounds only the L1; an entry evicted from L1 is still read from Redis. ' +
            'The L1 bound is tested in test/platform/cache/redis.test.ts',
          cases: ['lru-bound'],
        },
      ],
    },
  );
});
