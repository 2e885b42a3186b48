import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPlatform, type OpenedPlatform } from '../../../src/platform/open-platform.ts';
import { testConfig } from '../../support/blocks.ts';
import { parseExposition } from '../../support/prometheus.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../../support/real-services.ts';
import { serviceUrls } from '../../support/services.ts';
import { startTcpProxy, targetOf, type TcpProxy } from '../../support/tcp-proxy.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';
import { MIGRATIONS } from '../../support/registry.ts';

/** /metrics reads dependencies (the bus for consumer lag, the database for the outbox): a scrape must not wait on one that is away. */
const servicesUp = await probeRealServices();

const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
};

const lagOf = (exposition: string, consumer: string): number | undefined =>
  parseExposition(exposition).find((sample) => sample.name === 'blocks_bus_consumer_lag' && sample.labels['consumer'] === consumer)?.value;

describe('a gauge whose reading hangs', () => {
  it('answers the scrape within its bound with the last value, and takes the late reading at a later scrape', async () => {
    const metrics = createMetrics({}, { collectTimeoutMs: 100 });
    let reading: Promise<number> = Promise.resolve(1);
    metrics.gauge('test_hanging', 'A reading that may hang', [], async (set) => set(await reading));
    expect(parseExposition(await metrics.registry.metrics()).find((s) => s.name === 'test_hanging')?.value).toBe(1);
    let answer: (value: number) => void = () => undefined;
    reading = new Promise((resolve) => (answer = resolve));
    const hung = await timed(() => metrics.registry.metrics());
    expect(hung.ms).toBeLessThan(500);
    expect(parseExposition(hung.value).find((s) => s.name === 'test_hanging')?.value).toBe(1);
    answer(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    reading = new Promise(() => undefined);
    expect(parseExposition(await metrics.registry.metrics()).find((s) => s.name === 'test_hanging')?.value).toBe(2);
  });
});

describe.skipIf(!servicesUp)('/metrics while NATS is down', () => {
  let services: RealServicesEnv;
  let proxy: TcpProxy;
  let platform: OpenedPlatform;

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    proxy = await startTcpProxy(targetOf(serviceUrls.nats));
    platform = await openPlatform({
      config: testConfig({ ...services.env, NATS_URL: proxy.urlFor(serviceUrls.nats) }),
      version: 'test',
      migrations: MIGRATIONS,
      service: 'test',
    });
  }, 60_000);
  afterAll(async () => {
    await proxy?.restore();
    await platform?.close();
    await proxy?.close();
    await services?.cleanup();
  });

  it('answers within a second with the last known consumer lag', async () => {
    // A consumer whose handler never finishes: what is published stays unacked, its lag.
    const subscription = await platform.bus.subscribe(
      { consumer: 'slow-reader', subject: 'things.*', concurrency: 1 },
      () => new Promise(() => undefined),
    );
    for (let i = 0; i < 3; i++) await platform.bus.publish({ subject: 'things.happened', data: { i } });
    await expect.poll(async () => lagOf(await platform.metrics.registry.metrics(), 'slow-reader'), { timeout: 5_000 }).toBe(3);

    await proxy.cut();
    const scrape = await timed(() => platform.metrics.registry.metrics());
    expect(scrape.ms).toBeLessThan(1_000);
    expect(lagOf(scrape.value, 'slow-reader')).toBe(3);
    const again = await timed(() => platform.metrics.registry.metrics());
    expect(again.ms).toBeLessThan(1_000);
    await proxy.restore();
    await subscription.stop();
  }, 30_000);
});
