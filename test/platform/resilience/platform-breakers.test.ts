import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openPlatform, type OpenedPlatform } from '../../../src/platform/open-platform.ts';
import type { Delivery } from '../../../src/platform/bus/port.ts';
import { CircuitOpenError } from '../../../src/platform/resilience/errors.ts';
import { BREAKER_STATE_CHANGED } from '../../../src/platform/resilience/breaker-telemetry.ts';
import { testConfig } from '../../support/blocks.ts';
import { parseExposition } from '../../support/prometheus.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../support/real-services.ts';
import { MIGRATIONS } from '../../support/registry.ts';

const servicesUp = await probeRealServices();

const boom = (): Promise<never> => Promise.reject(new Error('provider down'));

/** Two replicas opened as `blocks start` opens them, on one PostgreSQL, NATS and Redis. */
describe.skipIf(!servicesUp)('breakers of two replicas opened by openPlatform', () => {
  let services: RealServicesEnv;
  let replicaA: OpenedPlatform;
  let replicaB: OpenedPlatform;
  const open = (instanceId?: string): Promise<OpenedPlatform> =>
    openPlatform({
      config: testConfig(services.env, { resilience: { failure_threshold: 2, recovery_timeout: 60_000 } }),
      version: 'test',
      service: 'test',
      migrations: MIGRATIONS,
      instanceId,
    });

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    replicaA = await open('replica-a');
    replicaB = await open('replica-b');
  }, 60_000);
  afterAll(async () => {
    await replicaA?.close();
    await replicaB?.close();
    await services?.cleanup();
  });

  it('shares a breaker a module asks to share, announces the change on the bus with the instance, and shows it in /metrics', async () => {
    const heard: Delivery[] = [];
    const watching = await replicaB.bus.subscribe({ consumer: 'breaker-watch', subject: 'platform.breaker.>' }, async (delivery) => {
      heard.push(delivery);
    });
    try {
      const onA = replicaA.breakers.get('provider.acme', { shared: true });
      for (let i = 0; i < 2; i += 1) await expect(onA.execute(boom)).rejects.toThrow('provider down');
      expect(onA.state()).toBe('open');

      const onB = replicaB.breakers.get('provider.acme', { shared: true });
      await vi.waitFor(() => expect(onB.execute(async () => 'called')).rejects.toBeInstanceOf(CircuitOpenError), { timeout: 3_000 });

      await vi.waitFor(() => expect(heard).toHaveLength(1), { timeout: 5_000 });
      expect(heard[0]?.subject).toBe(BREAKER_STATE_CHANGED);
      expect(heard[0]?.data).toMatchObject({
        event_type: BREAKER_STATE_CHANGED,
        payload: { name: 'provider.acme', from: 'closed', to: 'open', instance: replicaA.instanceId },
      });
      // Straight to the bus: nothing of it in the outbox.
      const { rows } = await replicaA.db.query<{ n: number }>('SELECT count(*) AS n FROM events WHERE event_type = $1', [
        BREAKER_STATE_CHANGED,
      ]);
      expect(rows).toEqual([{ n: 0 }]);

      const samples = parseExposition(await replicaB.metrics.registry.metrics());
      expect(samples.find((s) => s.name === 'blocks_breaker_state' && s.labels['breaker'] === 'provider.acme')?.value).toBe(2);
      expect(samples.find((s) => s.name === 'blocks_instance_info')?.labels).toMatchObject({ instance_id: 'replica-b' });
    } finally {
      await watching.stop();
    }
  }, 30_000);

  it('names each process with an id of its own when none is given', async () => {
    expect(replicaA.instanceId).not.toBe(replicaB.instanceId);
    const third = await open();
    try {
      expect(third.instanceId).toMatch(/^.+-[0-9a-f]{6}$/);
    } finally {
      await third.close();
    }
  }, 30_000);
});
