import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBreakerRegistry, type BreakerRegistry, type BreakerStateChange } from '../../../src/platform/resilience/breakers.ts';
import { createRedisBreakerStore, type SharedBreakerStore } from '../../../src/platform/resilience/shared-breaker-store.ts';
import { CircuitOpenError } from '../../../src/platform/resilience/errors.ts';
import { deleteRedisNamespace } from '../../conformance/bus.fixtures.ts';
import { probeService, uniqueName } from '../../support/services.ts';

const redis = await probeService('redis');

const SYNC_MS = 100;
const RECOVERY_MS = 400;

const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Two processes' registries on one Redis namespace: what two replicas of a service have. */
describe.skipIf(!redis.ok)('shared breakers across replicas (real Redis)', () => {
  const stores: SharedBreakerStore[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await Promise.all(prefixes.splice(0).map((prefix) => deleteRedisNamespace(redis.url, prefix)));
  });

  interface Replica {
    readonly registry: BreakerRegistry;
    readonly changes: BreakerStateChange[];
    readonly storeErrors: unknown[];
  }
  const replica = (prefix: string, url = redis.url): Replica => {
    const store = createRedisBreakerStore({ url, keyPrefix: prefix, timeoutMs: 500 });
    stores.push(store);
    const changes: BreakerStateChange[] = [];
    const storeErrors: unknown[] = [];
    const registry = createBreakerRegistry({
      failureThreshold: 3,
      recoveryTimeoutMs: RECOVERY_MS,
      sharedStore: store,
      sharedSyncIntervalMs: SYNC_MS,
      onStateChange: (change) => changes.push(change),
      onSharedStoreError: (error) => storeErrors.push(error),
    });
    return { registry, changes, storeErrors };
  };
  const twoReplicas = (): [Replica, Replica] => {
    const prefix = `test:${uniqueName('breaker')}:`;
    prefixes.push(prefix);
    return [replica(prefix), replica(prefix)];
  };
  const failTimes = async (registry: BreakerRegistry, times: number): Promise<void> => {
    for (let i = 0; i < times; i += 1) await expect(registry.get('llm', { shared: true }).execute(boom)).rejects.toThrow('dependency down');
  };

  it('opens for every replica within the sync interval once one replica opened it', async () => {
    const [a, b] = twoReplicas();
    let bCalls = 0;
    await expect(b.registry.get('llm', { shared: true }).execute(async () => ++bCalls)).resolves.toBe(1);
    await failTimes(a.registry, 3);
    expect(a.registry.state('llm')).toBe('open');
    const openedAt = Date.now();
    await vi.waitFor(
      async () => {
        await expect(b.registry.get('llm', { shared: true }).execute(async () => ++bCalls)).rejects.toBeInstanceOf(CircuitOpenError);
      },
      { timeout: 2_000, interval: 10 },
    );
    expect(Date.now() - openedAt).toBeLessThan(SYNC_MS + 500);
    const callsWhenRefused = bCalls;
    await expect(b.registry.execute('llm', async () => ++bCalls)).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(bCalls).toBe(callsWhenRefused);
    expect(b.registry.state('llm')).toBe('open');
    // The replica that opened it says so; the other one does not repeat it.
    expect(a.changes.map(({ from, to }) => `${from}->${to}`)).toEqual(['closed->open']);
    expect(b.changes).toEqual([]);
  });

  it('counts consecutive failures across replicas, and a success anywhere resets the count', async () => {
    const [a, b] = twoReplicas();
    await failTimes(a.registry, 2);
    await expect(b.registry.get('llm', { shared: true }).execute(boom)).rejects.toThrow('dependency down');
    expect(b.registry.state('llm')).toBe('open');

    const [c, d] = twoReplicas();
    await failTimes(c.registry, 2);
    await sleep(SYNC_MS);
    await expect(d.registry.get('llm', { shared: true }).execute(async () => 'ok')).resolves.toBe('ok');
    await expect(d.registry.get('llm', { shared: true }).execute(boom)).rejects.toThrow('dependency down');
    await failTimes(c.registry, 1);
    expect(c.registry.state('llm')).toBe('closed');
  });

  it('lets exactly one call across replicas try a recovering dependency, and closes it for all when it succeeds', async () => {
    const [a, b] = twoReplicas();
    await failTimes(a.registry, 3);
    await sleep(RECOVERY_MS + 50);
    let calls = 0;
    let release = (): void => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const trial = async (): Promise<string> => {
      calls += 1;
      await gate;
      return 'recovered';
    };
    const attempts = [a, b, a, b].map(({ registry }) =>
      registry
        .get('llm', { shared: true })
        .execute(trial)
        .catch((error: unknown) => error),
    );
    await vi.waitFor(() => expect(calls).toBe(1), { timeout: 2_000, interval: 10 });
    await sleep(50);
    expect(calls).toBe(1);
    release();
    const outcomes = await Promise.all(attempts);
    expect(outcomes.filter((outcome) => outcome === 'recovered')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome instanceof CircuitOpenError)).toHaveLength(3);
    await sleep(SYNC_MS);
    await expect(a.registry.get('llm', { shared: true }).execute(async () => 'a')).resolves.toBe('a');
    await expect(b.registry.get('llm', { shared: true }).execute(async () => 'b')).resolves.toBe('b');
    const reported = [...a.changes, ...b.changes].map(({ from, to }) => `${from}->${to}`);
    expect(reported).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it('reopens for every replica when the one trial fails', async () => {
    const [a, b] = twoReplicas();
    await failTimes(a.registry, 3);
    await sleep(RECOVERY_MS + 50);
    await expect(b.registry.get('llm', { shared: true }).execute(boom)).rejects.toThrow('dependency down');
    expect(b.changes.map(({ from, to }) => `${from}->${to}`)).toEqual(['open->half-open', 'half-open->open']);
    await sleep(SYNC_MS);
    await expect(a.registry.get('llm', { shared: true }).execute(async () => 'x')).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('decides locally while Redis is unreachable, and reports why', async () => {
    const prefix = `test:${uniqueName('breaker')}:`;
    const offline = replica(prefix, 'redis://127.0.0.1:1');
    const breaker = offline.registry.get('llm', { shared: true });
    await expect(breaker.execute(async () => 'served')).resolves.toBe('served');
    expect(offline.storeErrors.length).toBeGreaterThan(0);
    for (let i = 0; i < 3; i += 1) await expect(breaker.execute(boom)).rejects.toThrow('dependency down');
    await expect(breaker.execute(async () => 'x')).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('keeps breakers not asked to be shared local, and refuses to make one name both', async () => {
    const [a, b] = twoReplicas();
    for (let i = 0; i < 3; i += 1) await expect(a.registry.execute('local-only', boom)).rejects.toThrow('dependency down');
    expect(a.registry.state('local-only')).toBe('open');
    await sleep(SYNC_MS);
    await expect(b.registry.execute('local-only', async () => 'fine')).resolves.toBe('fine');
    expect(() => a.registry.get('local-only', { shared: true })).toThrow('already local');
    // Without a store a shared breaker is the process' own.
    const alone = createBreakerRegistry({ failureThreshold: 1 });
    await expect(alone.get('x', { shared: true }).execute(boom)).rejects.toThrow('dependency down');
    expect(alone.state('x')).toBe('open');
  });
});
