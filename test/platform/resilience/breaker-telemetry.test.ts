import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import type { Delivery, EventBus } from '../../../src/platform/bus/port.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';
import { createBreakerRegistry } from '../../../src/platform/resilience/breakers.ts';
import { BREAKER_STATE_CHANGED, publishBreakerChanges, registerBreakerGauge } from '../../../src/platform/resilience/breaker-telemetry.ts';
import { isSystemEvent } from '../../../src/platform/events/types.ts';
import { steppingClock, type SteppingClock } from '../../support/stepping-clock.ts';

const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));

const manualClock = (): SteppingClock => steppingClock();

describe('breaker state changes as events and a gauge', () => {
  const buses: EventBus[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
  });

  it('publishes every change as platform.breaker.state_changed naming the breaker, both states and the instance', async () => {
    const bus = createMemoryBus();
    buses.push(bus);
    const received: Delivery[] = [];
    await bus.subscribe({ consumer: 'breaker-watch', subject: 'platform.breaker.>' }, async (delivery) => {
      received.push(delivery);
    });
    const clock = manualClock();
    const breakers = createBreakerRegistry({
      failureThreshold: 2,
      recoveryTimeoutMs: 1_000,
      clock,
      onStateChange: publishBreakerChanges({ bus, instanceId: 'host-a-1f2e3d' }),
    });
    for (let i = 0; i < 2; i += 1) await expect(breakers.execute('llm', boom)).rejects.toThrow('dependency down');
    clock.advance(1_000);
    await expect(breakers.execute('llm', async () => 'ok')).resolves.toBe('ok');

    await vi.waitFor(() => expect(received).toHaveLength(3), { timeout: 2_000 });
    const events = received.map((delivery) => delivery.data);
    for (const event of events) expect(isSystemEvent(event)).toBe(true);
    expect(received.map((delivery) => delivery.subject)).toEqual([BREAKER_STATE_CHANGED, BREAKER_STATE_CHANGED, BREAKER_STATE_CHANGED]);
    expect(events.map((event) => (event as { payload: unknown }).payload)).toEqual([
      { name: 'llm', from: 'closed', to: 'open', instance: 'host-a-1f2e3d' },
      { name: 'llm', from: 'open', to: 'half-open', instance: 'host-a-1f2e3d' },
      { name: 'llm', from: 'half-open', to: 'closed', instance: 'host-a-1f2e3d' },
    ]);
  });

  it('keeps the breaker working when the bus refuses the event, and says so', async () => {
    const warnings: unknown[] = [];
    const refusing: Pick<EventBus, 'publish'> = { publish: () => Promise.reject(new Error('bus down')) };
    const breakers = createBreakerRegistry({
      failureThreshold: 1,
      onStateChange: publishBreakerChanges({
        bus: refusing,
        instanceId: 'i',
        logger: { warn: (details: unknown) => warnings.push(details) },
      }),
    });
    await expect(breakers.execute('llm', boom)).rejects.toThrow('dependency down');
    expect(breakers.state('llm')).toBe('open');
    await vi.waitFor(() => expect(warnings).toHaveLength(1));
    expect(warnings[0]).toMatchObject({ name: 'llm', from: 'closed', to: 'open' });
  });

  it('reports blocks_breaker_state per breaker: 0 closed, 1 half-open, 2 open', async () => {
    const clock = manualClock();
    const breakers = createBreakerRegistry({ failureThreshold: 1, recoveryTimeoutMs: 1_000, clock });
    const metrics = createMetrics();
    registerBreakerGauge(metrics, breakers);
    const gauge = async (): Promise<string[]> =>
      (await metrics.registry.metrics()).split('\n').filter((line) => line.startsWith('blocks_breaker_state{'));

    await breakers.execute('healthy', async () => 1);
    await expect(breakers.execute('failing', boom)).rejects.toThrow('dependency down');
    expect(await gauge()).toEqual(['blocks_breaker_state{breaker="failing"} 2', 'blocks_breaker_state{breaker="healthy"} 0']);
    clock.advance(1_000);
    expect(await gauge()).toContain('blocks_breaker_state{breaker="failing"} 1');
    await breakers.execute('failing', async () => 1);
    expect(await gauge()).toContain('blocks_breaker_state{breaker="failing"} 0');
  });
});
