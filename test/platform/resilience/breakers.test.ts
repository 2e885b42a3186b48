import { describe, expect, it } from 'vitest';
import { createSystemClock } from '../../../src/platform/clock.ts';
import { steppingClock } from '../../support/stepping-clock.ts';
import { createBreakerRegistry, type BreakerStateChange } from '../../../src/platform/resilience/breakers.ts';
import { CircuitOpenError, isCircuitOpenError } from '../../../src/platform/resilience/errors.ts';
import { isBlocksError } from '../../../src/platform/errors.ts';

/** A clock that moves only when the test says so. */
const manualClock = steppingClock;

const boom = (): Promise<never> => Promise.reject(new Error('dependency down'));

const failTimes = async (run: () => Promise<unknown>, times: number): Promise<void> => {
  for (let i = 0; i < times; i += 1) {
    await expect(run()).rejects.toThrow('dependency down');
  }
};

describe('createBreakerRegistry', () => {
  it('stays closed below the threshold and opens after 5 consecutive failures by default', async () => {
    const clock = manualClock();
    const registry = createBreakerRegistry({ clock });
    const run = () => registry.execute('llm', boom);

    await failTimes(run, 4);
    expect(registry.state('llm')).toBe('closed');
    await failTimes(run, 1);
    expect(registry.state('llm')).toBe('open');
    expect(registry.states()).toEqual([
      {
        name: 'llm',
        state: 'open',
        failures: 5,
        opened_at: new Date(clock.now()).toISOString(),
      },
    ]);
  });

  it('counts consecutive failures only: a success resets the count', async () => {
    const registry = createBreakerRegistry({
      failureThreshold: 3,
      clock: manualClock(),
    });
    const run = () => registry.execute('db', boom);
    await failTimes(run, 2);
    await expect(registry.execute('db', async () => 'ok')).resolves.toBe('ok');
    expect(registry.get('db').snapshot().failures).toBe(0);
    await failTimes(run, 2);
    expect(registry.state('db')).toBe('closed');
    await failTimes(run, 1);
    expect(registry.state('db')).toBe('open');
  });

  it('rejects fast with CIRCUIT_OPEN (503) while open, without calling the function', async () => {
    const registry = createBreakerRegistry({
      failureThreshold: 2,
      recoveryTimeoutMs: 1000,
      clock: manualClock(),
    });
    await failTimes(() => registry.execute('mcp', boom), 2);

    let calls = 0;
    const error = await registry
      .execute('mcp', async () => {
        calls += 1;
        return 'should not run';
      })
      .catch((e: unknown) => e);
    expect(calls).toBe(0);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(isBlocksError(error)).toBe(true);
    const open = error as CircuitOpenError;
    expect(open.code).toBe('CIRCUIT_OPEN');
    expect(open.status).toBe(503);
    expect(open.breaker).toBe('mcp');
    expect(open.extensions).toEqual({ breaker: 'mcp', retry_after_ms: 1000 });
  });

  it('half-opens after the recovery timeout and closes when the trial call succeeds', async () => {
    const clock = manualClock();
    const changes: BreakerStateChange[] = [];
    const registry = createBreakerRegistry({
      failureThreshold: 2,
      recoveryTimeoutMs: 30_000,
      clock,
      onStateChange: (c) => changes.push(c),
    });
    await failTimes(() => registry.execute('svc', boom), 2);

    clock.advance(29_999);
    expect(registry.state('svc')).toBe('open');
    await expect(registry.execute('svc', async () => 'early')).rejects.toBeInstanceOf(CircuitOpenError);

    clock.advance(1);
    expect(registry.state('svc')).toBe('half-open');
    await expect(registry.execute('svc', async () => 'recovered')).resolves.toBe('recovered');
    expect(registry.state('svc')).toBe('closed');
    expect(registry.get('svc').snapshot()).toEqual({
      name: 'svc',
      state: 'closed',
      failures: 0,
      opened_at: null,
    });
    expect(changes.map((c) => [c.from, c.to])).toEqual([
      ['closed', 'open'],
      ['open', 'half-open'],
      ['half-open', 'closed'],
    ]);
  });

  it('reopens for another full recovery timeout when the trial call fails', async () => {
    const clock = manualClock();
    const registry = createBreakerRegistry({
      failureThreshold: 2,
      recoveryTimeoutMs: 1000,
      clock,
    });
    await failTimes(() => registry.execute('svc', boom), 2);
    const firstOpen = registry.get('svc').snapshot().opened_at;

    clock.advance(1000);
    await expect(registry.execute('svc', boom)).rejects.toThrow('dependency down');
    expect(registry.state('svc')).toBe('open');
    expect(registry.get('svc').snapshot().opened_at).not.toBe(firstOpen);

    let calls = 0;
    clock.advance(999);
    await expect(registry.execute('svc', async () => (calls += 1))).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(0);
    clock.advance(1);
    await expect(registry.execute('svc', async () => (calls += 1))).resolves.toBe(1);
    expect(registry.state('svc')).toBe('closed');
  });

  it('lets exactly one trial call through while half-open and rejects the rest', async () => {
    const clock = manualClock();
    const registry = createBreakerRegistry({
      failureThreshold: 1,
      recoveryTimeoutMs: 10,
      clock,
    });
    await failTimes(() => registry.execute('svc', boom), 1);
    clock.advance(10);

    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const trial = registry.execute('svc', async () => {
      calls += 1;
      await gate;
      return 'trial';
    });
    const others = await Promise.allSettled([1, 2, 3].map(() => registry.execute('svc', async () => (calls += 1))));
    expect(others.every((r) => r.status === 'rejected' && isCircuitOpenError(r.reason))).toBe(true);
    expect(calls).toBe(1);
    expect(registry.state('svc')).toBe('half-open');
    release();
    await expect(trial).resolves.toBe('trial');
    expect(registry.state('svc')).toBe('closed');
  });

  it('keeps separate names independent', async () => {
    const registry = createBreakerRegistry({
      failureThreshold: 2,
      clock: manualClock(),
    });
    await failTimes(() => registry.execute('openai', boom), 2);
    expect(registry.state('openai')).toBe('open');
    expect(registry.state('anthropic')).toBe('closed');
    await expect(registry.execute('anthropic', async () => 42)).resolves.toBe(42);
    expect(registry.states().map((s) => [s.name, s.state])).toEqual([
      ['anthropic', 'closed'],
      ['openai', 'open'],
    ]);
  });

  it('returns the same breaker for a name and reports an unused name as closed', () => {
    const registry = createBreakerRegistry();
    expect(registry.get('a')).toBe(registry.get('a'));
    expect(registry.get('a')).not.toBe(registry.get('b'));
    expect(registry.state('never-used')).toBe('closed');
    expect(registry.states().map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('passes the caller abort signal through to the function', async () => {
    const registry = createBreakerRegistry();
    const controller = new AbortController();
    const seen = await registry.execute('x', (signal) => signal, controller.signal);
    controller.abort();
    expect(seen.aborted).toBe(true);
  });

  it('rejects invalid options', () => {
    expect(() => createBreakerRegistry({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => createBreakerRegistry({ recoveryTimeoutMs: -1 })).toThrow(RangeError);
  });

  it('recovers on the system clock after a short real recovery timeout', async () => {
    const registry = createBreakerRegistry({
      failureThreshold: 1,
      recoveryTimeoutMs: 100,
      clock: createSystemClock(),
    });
    await failTimes(() => registry.execute('real', boom), 1);
    await expect(registry.execute('real', async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
    await createSystemClock().sleep(120);
    expect(registry.state('real')).toBe('half-open');
    await expect(registry.execute('real', async () => 2)).resolves.toBe(2);
    expect(registry.state('real')).toBe('closed');
  });
});
