import { probeService, uniqueName, serviceUrls } from './services.ts';
import { createTestDatabase } from './postgres.ts';
import { deleteNatsStream, deleteRedisNamespace } from '../conformance/bus.fixtures.ts';

export interface RealServicesEnv {
  /** Environment variables that point Blocks at its own database, stream and key prefix. */
  readonly env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** Whether PostgreSQL, NATS and Redis all answer (fails instead when they are mandatory). */
export async function probeRealServices(): Promise<boolean> {
  const probes = await Promise.all([probeService('postgres'), probeService('nats'), probeService('redis')]);
  return probes.every((p) => p.ok);
}

/**
 * A fresh database, NATS stream (or Redis stream) and Redis key prefix for one test file, and
 * the variables that make `blocks start` use them.
 */
export async function realServicesEnv(bus: 'nats' | 'redis'): Promise<RealServicesEnv> {
  // Migrated (cloned from the run's template): a start finds nothing to apply.
  const database = await createTestDatabase('blocks_e2e', { migrated: true });
  const namespace = uniqueName('e2e');
  const cachePrefix = `test:${namespace}:cache:`;
  const busStreamKey = `${namespace}:${namespace}`;
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    REDIS_URL: serviceUrls.redis,
    BLOCKS__bus__stream: namespace,
    BLOCKS__bus__subject_prefix: namespace,
    BLOCKS__cache__key_prefix: cachePrefix,
    ...(bus === 'nats' ? { NATS_URL: serviceUrls.nats } : { BUS: 'redis' }),
  };
  return {
    env,
    async cleanup() {
      await database.drop();
      await deleteRedisNamespace(serviceUrls.redis, cachePrefix);
      if (bus === 'nats') await deleteNatsStream(serviceUrls.nats, namespace);
      else await deleteRedisNamespace(serviceUrls.redis, busStreamKey);
    },
  };
}
