import { describe, expect, it } from 'vitest';
import { verdictOf } from '../../../../src/autonomous/ai-router/proxy/attempts.ts';
import { createBalancer } from '../../../../src/autonomous/ai-router/proxy/balancer.ts';
import { createDeploymentDirectory, isResolved, type ResolvedDeployment } from '../../../../src/autonomous/ai-router/proxy/deployments.ts';
import { createBreakerGate, type AttemptBreakers } from '../../../../src/autonomous/ai-router/proxy/model-health.ts';
import type { ModelSpec } from '../../../../src/autonomous/ai-router/types.ts';
import { createBreakerRegistry } from '../../../../src/platform/resilience/breakers.ts';
import { createSecretResolver } from '../../../../src/platform/secrets/index.ts';
import { captureLogs } from '../../../support/blocks.ts';

const model = (deployments: ModelSpec['deployments']): ModelSpec => ({
  provider: 'p1',
  model: 'm',
  task_types: ['chat'],
  context_window: 1000,
  input_price_per_mtok: 1,
  output_price_per_mtok: 1,
  quality: { chat: { low: 0.9, medium: 0.9, high: 0.9 } },
  capabilities: [],
  typical_latency_ms: null,
  deployments,
});

const logs = captureLogs('warn');
const env = { P2_KEY: 'secret-p2', DEPLOYMENT_KEY: 'secret-deployment', ELSEWHERE: 'secret-elsewhere' };
const directory = createDeploymentDirectory({
  providers: {
    p1: { protocol: 'openai', base_url: 'http://127.0.0.1:9/v1', region: 'us' },
    p2: { protocol: 'anthropic', base_url: 'http://127.0.0.1:9', region: 'eu', credentials_ref: 'env:P2_KEY' },
    p3: { protocol: 'openai', base_url: 'http://127.0.0.1:9/v1' },
  },
  attemptTimeoutMs: 1000,
  secrets: createSecretResolver({
    bounds: { env: ['P2_KEY', 'DEPLOYMENT_KEY'], directories: [] },
    dataDir: '/nonexistent/blocks-data',
    env,
  }),
  logger: logs.logger,
});

const resolvedOf = (spec: ModelSpec): ResolvedDeployment[] => directory.slotsOf(spec).filter(isResolved);

describe('deployments', () => {
  it('resolve unset fields from their provider and report a provider that is not configured', () => {
    const spec = model([
      { id: 'a', provider: 'p1', weight: 1 },
      { id: 'b', provider: 'p2', weight: 2, region: 'ch', upstream_model: 'm-2024', base_url: 'http://127.0.0.1:10' },
      { id: 'c', provider: 'nowhere', weight: 1 },
    ]);
    const slots = directory.slotsOf(spec);
    expect(slots[0]).toMatchObject({ key: 'm/a', protocol: 'openai', baseUrl: 'http://127.0.0.1:9/v1', region: 'us', upstreamModel: 'm' });
    expect(slots[1]).toMatchObject({
      key: 'm/b',
      protocol: 'anthropic',
      baseUrl: 'http://127.0.0.1:10',
      region: 'ch',
      upstreamModel: 'm-2024',
      credentialsRef: undefined,
    });
    expect(slots[1]).toMatchObject({ breakers: { model: 'ai.model.m', provider: 'ai.provider.p2', deployment: 'ai.deployment.m/b' } });
    expect(slots[2]).toMatchObject({ key: 'm/c', reason: expect.stringContaining("'nowhere'") as unknown });
    expect(directory.slotsOf(spec)).toBe(slots);
  });

  it('keep one adapter per deployment until its settings change', () => {
    const [a] = resolvedOf(model([{ id: 'a', provider: 'p1', weight: 1 }])) as [ResolvedDeployment];
    const first = directory.adapterFor(a);
    expect(directory.adapterFor(a)).toBe(first);
    const [moved] = resolvedOf(model([{ id: 'a', provider: 'p1', weight: 1, base_url: 'http://127.0.0.1:11/v1' }])) as [ResolvedDeployment];
    expect(directory.adapterFor(moved)).not.toBe(first);
  });

  it("give a deployment the provider's key only on the provider's own endpoint", () => {
    const [own, same, moved, named] = directory.slotsOf(
      model([
        { id: 'own', provider: 'p2', weight: 1 },
        { id: 'same', provider: 'p2', weight: 1, base_url: 'HTTP://127.0.0.1:9/' },
        { id: 'moved', provider: 'p2', weight: 1, base_url: 'http://127.0.0.1:9/elsewhere' },
        { id: 'named', provider: 'p2', weight: 1, base_url: 'http://127.0.0.1:12', credentials_ref: 'env:DEPLOYMENT_KEY' },
      ]),
    ) as ResolvedDeployment[];
    expect(own?.credentialsRef).toBe('env:P2_KEY');
    expect(same?.credentialsRef).toBe('env:P2_KEY');
    expect(moved?.credentialsRef).toBeUndefined();
    expect(named?.credentialsRef).toBe('env:DEPLOYMENT_KEY');
  });

  it('refuse a stored reference outside the bounds when the key is read: the code to the caller, the reason to the log once, never the value', () => {
    const [stored] = resolvedOf(model([{ id: 'stored', provider: 'p1', weight: 1, credentials_ref: 'env:ELSEWHERE' }])) as [
      ResolvedDeployment,
    ];
    const before = logs.lines.length;
    expect(() => directory.adapterFor(stored)).toThrow(/^no usable key: SECRET_REF_NOT_ALLOWED$/);
    expect(() => directory.adapterFor(stored)).toThrow(/SECRET_REF_NOT_ALLOWED/);
    const logged = logs.lines.slice(before);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      model: 'm',
      deployment: 'stored',
      code: 'SECRET_REF_NOT_ALLOWED',
      msg: 'AI deployment credentials refused',
    });
    expect(logged[0]?.['detail']).toMatch(/'env:ELSEWHERE' is not a variable secrets.env allows/);
    expect(JSON.stringify(logs.lines)).not.toContain('secret-elsewhere');
  });

  it('read a key within the bounds when the adapter is built, and report an unset one by its code', () => {
    const real = createSecretResolver({
      bounds: { env: ['P2_KEY', 'UNSET_KEY'], directories: [] },
      dataDir: '/nonexistent/blocks-data',
      env,
    });
    const read: string[] = [];
    const recording = createDeploymentDirectory({
      providers: { p1: { protocol: 'openai', base_url: 'http://127.0.0.1:9/v1' } },
      attemptTimeoutMs: 1000,
      secrets: { check: (ref) => real.check(ref), read: (ref) => (read.push(ref), real.read(ref)) },
      logger: logs.logger,
    });
    const [set, unset] = recording.slotsOf(
      model([
        { id: 'set', provider: 'p1', weight: 1, credentials_ref: 'env:P2_KEY' },
        { id: 'unset', provider: 'p1', weight: 1, credentials_ref: 'env:UNSET_KEY' },
      ]),
    ) as ResolvedDeployment[];
    expect(recording.adapterFor(set as ResolvedDeployment)).toBeDefined();
    expect(read).toEqual(['env:P2_KEY']);
    expect(() => recording.adapterFor(unset as ResolvedDeployment)).toThrow(/^no usable key: SECRET_UNAVAILABLE$/);
  });
});

describe('balancer', () => {
  const spec = model([
    { id: 'heavy', provider: 'p1', weight: 3 },
    { id: 'light', provider: 'p1', weight: 1 },
    { id: 'eu', provider: 'p2', weight: 1 },
  ]);
  const [heavy, light, eu] = resolvedOf(spec) as [ResolvedDeployment, ResolvedDeployment, ResolvedDeployment];

  it('spreads idle traffic in proportion to weight', () => {
    let seed = 1;
    const random = (): number => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const balancer = createBalancer({ random });
    const firsts = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const first = balancer.order([heavy, light], undefined)[0] as ResolvedDeployment;
      firsts.set(first.deployment.id, (firsts.get(first.deployment.id) ?? 0) + 1);
    }
    expect((firsts.get('heavy') ?? 0) / 5000).toBeGreaterThan(0.7);
    expect((firsts.get('heavy') ?? 0) / 5000).toBeLessThan(0.8);
  });

  it('prefers the deployment with the fewest calls in flight per unit of weight', () => {
    const balancer = createBalancer({ random: () => 0.5 });
    const releases = [balancer.acquire(heavy), balancer.acquire(heavy), balancer.acquire(heavy), balancer.acquire(heavy)];
    expect(balancer.order([heavy, light], undefined).map((d) => d.deployment.id)).toEqual(['light', 'heavy']);
    for (const release of releases) release();
    releases[0]?.();
    expect(balancer.inFlight(heavy)).toBe(0);
    const l = balancer.acquire(light);
    expect(balancer.order([heavy, light], undefined).map((d) => d.deployment.id)).toEqual(['heavy', 'light']);
    l();
  });

  it('puts a deployment that asked to be left alone (Retry-After) last until then', () => {
    let now = 1000;
    const balancer = createBalancer({ now: () => now, random: () => 0.5 });
    balancer.coolDown(heavy, 2000);
    expect(balancer.order([heavy, light], undefined).map((d) => d.deployment.id)).toEqual(['light', 'heavy']);
    now += 2001;
    expect(balancer.order([heavy, light], undefined)[0]?.deployment.id).toBe('heavy');
  });

  it('leaves out deployments a tenant may not use: other providers, other or unknown regions', () => {
    const balancer = createBalancer();
    expect(balancer.order([heavy, light, eu], { allowed_regions: ['eu'] }).map((d) => d.deployment.id)).toEqual(['eu']);
    expect(
      balancer
        .order([heavy, light, eu], { allowed_providers: ['p1'] })
        .map((d) => d.deployment.id)
        .sort(),
    ).toEqual(['heavy', 'light']);
    const [unplaced] = resolvedOf(model([{ id: 'x', provider: 'p3', weight: 1 }])) as [ResolvedDeployment];
    expect(unplaced.region).toBeUndefined();
    expect(balancer.order([unplaced, eu], { allowed_regions: ['eu', 'us'] }).map((d) => d.deployment.id)).toEqual(['eu']);
  });
});

describe('breaker gate', () => {
  const names: AttemptBreakers = { model: 'ai.model.m', provider: 'ai.provider.p1', deployment: 'ai.deployment.m/a' };
  const setup = () => {
    let now = 0;
    const registry = createBreakerRegistry({
      failureThreshold: 2,
      recoveryTimeoutMs: 100,
      clock: { now: () => now, sleep: async () => undefined },
    });
    return { registry, gate: createBreakerGate(registry), advance: (ms: number) => (now += ms) };
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('opens all three breakers after consecutive failures and makes the model unavailable', async () => {
    const { registry, gate } = setup();
    const spec = model([{ id: 'a', provider: 'p1', weight: 1 }]);
    for (let i = 0; i < 2; i++) {
      gate.begin(names);
      gate.record(names, 'failure');
    }
    await settle();
    expect(registry.state('ai.model.m')).toBe('open');
    expect(registry.state('ai.provider.p1')).toBe('open');
    expect(gate.usable(names)).toBe(false);
    expect(gate.available(spec)).toBe(false);
  });

  it('counts a rate limit on the deployment only, and a client error as a sign of life', async () => {
    const { registry, gate } = setup();
    gate.record(names, 'deployment-failure');
    gate.record(names, 'deployment-failure');
    await settle();
    expect(registry.state(names.deployment)).toBe('open');
    expect(registry.state(names.model)).toBe('closed');
    expect(registry.states().find((b) => b.name === names.model)).toBeUndefined();
    const other: AttemptBreakers = { ...names, deployment: 'ai.deployment.m/b' };
    gate.record(other, 'failure');
    gate.record(other, 'success');
    gate.record(other, 'failure');
    await settle();
    expect(registry.state(names.model)).toBe('closed');
  });

  it("counts a refused address and a refused key on their deployment alone, so the model's other deployment stays usable", async () => {
    for (const kind of ['egress_refused', 'auth', 'rate_limited'] as const) {
      const { registry, gate } = setup();
      const spec = model([
        { id: 'a', provider: 'p1', weight: 1 },
        { id: 'b', provider: 'p1', weight: 1 },
      ]);
      gate.record(names, verdictOf(kind));
      gate.record(names, verdictOf(kind));
      await settle();
      expect(registry.state(names.deployment), kind).toBe('open');
      expect(registry.state(names.model), kind).toBe('closed');
      expect(registry.state(names.provider), kind).toBe('closed');
      expect(gate.usable({ ...names, deployment: 'ai.deployment.m/b' }), kind).toBe(true);
      expect(gate.available(spec), kind).toBe(true);
    }
    expect(verdictOf('server')).toBe('failure');
    expect(verdictOf('client')).toBe('success');
  });

  it('lets exactly one trial call through a recovering breaker, closing it on success', async () => {
    const { registry, gate, advance } = setup();
    gate.record(names, 'failure');
    gate.record(names, 'failure');
    await settle();
    expect(gate.usable(names)).toBe(false);
    advance(150);
    expect(gate.usable(names)).toBe(true);
    gate.begin(names);
    expect(gate.usable(names)).toBe(false);
    gate.record(names, 'success');
    await settle();
    expect(registry.state(names.model)).toBe('closed');
    expect(gate.usable(names)).toBe(true);
  });

  it('reopens after a failed trial, and a client that went away ends the trial without a verdict', async () => {
    const { registry, gate, advance } = setup();
    gate.record(names, 'failure');
    gate.record(names, 'failure');
    await settle();
    advance(150);
    gate.begin(names);
    gate.record(names, 'none');
    expect(gate.usable(names)).toBe(true);
    gate.begin(names);
    gate.record(names, 'failure');
    await settle();
    expect(registry.state(names.model)).toBe('open');
    expect(gate.usable(names)).toBe(false);
  });
});
