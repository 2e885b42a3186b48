import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { stringify as toYaml } from 'yaml';
import { eventually, tempDir } from '../support/blocks.ts';
import { clientToken, createApiKey, firstStartClient, spawnBlocks, type BlocksProcess } from '../support/blocks-process.ts';
import { catalogModel } from '../support/catalog-model.ts';
import { startFakeOpenAi, type FakeProvider } from '../support/fake-providers/index.ts';
import { probeRealServices, realServicesEnv, type RealServicesEnv } from '../support/real-services.ts';

const available = await probeRealServices();

// Every process verifies Blocks' tokens itself, so all must agree on their `iss` (as in test/e2e/replicas.test.ts).
const ISSUER = 'https://blocks.idempotency.test';

const model = catalogModel('alpha', { capabilities: ['streaming'] });

/**
 * Two autonomous replicas (real processes) behind a gateway process, on one PostgreSQL. Each
 * replica calls its own fake provider, so the test knows which replica a call went through.
 */
describe.skipIf(!available)('Idempotency-Key across replicas: a replica killed mid-request', () => {
  let services: RealServicesEnv;
  let db: Client;
  const processes: BlocksProcess[] = [];
  const fakes: FakeProvider[] = [];
  const dir = tempDir('blocks-idempotency-replicas');
  let a: BlocksProcess;
  let b: BlocksProcess;
  let fakeA: FakeProvider;
  let fakeB: FakeProvider;
  let gatewayUrl: string;
  let key: string;
  let replicaEnv: Record<'a' | 'b', Record<string, string>>;

  /** Starts a killed replica again on its port, so the gateway's pool has both members once more. */
  const respawn = async (which: 'a' | 'b'): Promise<void> => {
    const old = which === 'a' ? a : b;
    const port = new URL(old.urls.autonomous as string).port;
    const fresh = await spawnBlocks(['autonomous'], { ...replicaEnv[which], BLOCKS_AUTONOMOUS_PORT: port });
    processes.push(fresh);
    if (which === 'a') a = fresh;
    else b = fresh;
  };

  beforeAll(async () => {
    services = await realServicesEnv('nats');
    db = new Client({ connectionString: services.env.DATABASE_URL });
    await db.connect();
    fakeA = await startFakeOpenAi({ kind: 'answer' });
    fakeB = await startFakeOpenAi({ kind: 'answer' });
    fakes.push(fakeA, fakeB);
    const catalogFile = join(dir.path, 'models.yaml');
    writeFileSync(catalogFile, toYaml({ models: [model] }));
    const env = { ...services.env, BLOCKS__auth__issuer: ISSUER, BLOCKS__ai__catalog_file: catalogFile };
    const provider = (fake: FakeProvider) => JSON.stringify({ fake: { protocol: 'openai', base_url: fake.baseUrl } });
    replicaEnv = { a: { ...env, BLOCKS__ai__providers: provider(fakeA) }, b: { ...env, BLOCKS__ai__providers: provider(fakeB) } };
    a = await spawnBlocks(['autonomous'], replicaEnv.a);
    processes.push(a);
    b = await spawnBlocks(['autonomous'], replicaEnv.b);
    processes.push(b);
    const gateway = await spawnBlocks(['gateway'], {
      ...env,
      BLOCKS__services__autonomous__urls: JSON.stringify([a.urls.autonomous, b.urls.autonomous]),
      // Only the evidence the test provides moves members: no checks, no ejection, no breaker.
      BLOCKS__gateway__upstreams__health_check__interval: '0',
      BLOCKS__gateway__upstreams__passive__failures: '100',
      BLOCKS__resilience__failure_threshold: '100',
    });
    processes.push(gateway);
    gatewayUrl = gateway.urls.gateway as string;
    const admin = await clientToken(gatewayUrl, await firstStartClient(gateway));
    key = await createApiKey(gatewayUrl, admin, ['ai:invoke']);
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await Promise.all(fakes.map((fake) => fake.close()));
    await db?.end();
    await services?.cleanup();
    dir.remove();
  });

  const chat = (idempotencyKey: string, correlationId: string, text = 'hello') =>
    fetch(`${gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': key,
        'idempotency-key': idempotencyKey,
        'x-correlation-id': correlationId,
      },
      body: JSON.stringify({ model: 'alpha', messages: [{ role: 'user', content: text }] }),
    });
  const callEvents = async (correlationId: string): Promise<number> =>
    Number(
      (
        await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM events WHERE correlation_id = $1 AND event_type IN ('ai.request.completed', 'ai.request.failed')",
          [correlationId],
        )
      ).rows[0]?.n,
    );
  const providerCalls = (): number => fakeA.requests.length + fakeB.requests.length;

  it('answers a retry on the other replica with the stored answer, byte for byte: one provider call, one call event', async () => {
    const calls = providerCalls();
    const first = await chat('same-call', 'idem-replay');
    const firstText = await first.text();
    expect(first.status).toBe(200);
    // Round robin: the next request with the key goes to the other replica, which finds the answer in the shared database.
    const retries = await Promise.all([0, 1].map(async () => chat('same-call', 'idem-replay')));
    for (const retry of retries) {
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await retry.text()).toBe(firstText);
    }
    expect(providerCalls() - calls).toBe(1);
    expect(
      await eventually(
        () => callEvents('idem-replay'),
        (n) => n >= 1,
      ),
    ).toBe(1);
  });

  it('replays the answer with the headers it was first sent with, stored when the call was recorded', async () => {
    const first = await chat('headers-call', 'idem-headers');
    expect(first.status).toBe(200);
    const firstText = await first.text();
    const { rows } = await db.query<{ state: string; body: Buffer; headers: Record<string, string> }>(
      `SELECT state, body, headers FROM idempotency_keys WHERE key = 'headers-call'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.state).toBe('completed');
    expect(rows[0]?.body.toString()).toBe(firstText);
    const retry = await chat('headers-call', 'idem-headers-retry');
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    for (const name of ['content-type', 'x-blocks-request-id', 'x-blocks-model', 'x-blocks-provider', 'x-blocks-attempts']) {
      expect(retry.headers.get(name), name).toBe(first.headers.get(name));
      expect(first.headers.get(name), name).not.toBeNull();
    }
    expect(retry.headers.get('x-correlation-id')).toBe('idem-headers-retry');
    expect(await retry.text()).toBe(firstText);
  });

  /**
   * Sends one keyed call through the gateway and kills (SIGKILL) the replica that took it while its
   * call record and stored answer wait to commit: the test holds the key's row lock, so the
   * transaction writing both waits on it, and the kill ends that transaction with nothing committed.
   */
  const crashBeforeCommit = async (idempotencyKey: string, correlationId: string) => {
    // The replica that takes the call waits on its provider long enough for the test to hold the key's row.
    fakeA.setBehaviour({ kind: 'slow', delayMs: 800 });
    fakeB.setBehaviour({ kind: 'slow', delayMs: 800 });
    const before = { a: fakeA.requests.length, b: fakeB.requests.length };
    const answer = chat(idempotencyKey, correlationId, 'crash me');
    const took = await eventually(
      async () => (fakeA.requests.length > before.a ? 'a' : fakeB.requests.length > before.b ? 'b' : undefined),
      (which) => which !== undefined,
    );
    const victim = took === 'a' ? a : b;
    const lock = new Client({ connectionString: services.env.DATABASE_URL });
    await lock.connect();
    try {
      await lock.query('BEGIN');
      const held = await lock.query('SELECT state FROM idempotency_keys WHERE key = $1 FOR UPDATE', [idempotencyKey]);
      expect(held.rows).toEqual([{ state: 'in_flight' }]);
      // Read outside the lock's transaction: pg_stat_activity is a snapshot for the rest of a transaction.
      const waiting = await eventually(
        async () =>
          (
            await db.query<{ pid: number }>(
              "SELECT pid FROM pg_stat_activity WHERE query LIKE 'UPDATE idempotency_keys%' AND wait_event_type = 'Lock'",
            )
          ).rows,
        (rows) => rows.length === 1,
      );
      expect(waiting).toHaveLength(1);
      // The call's event is written in the same transaction, so it is not visible while the answer waits.
      expect(await callEvents(correlationId)).toBe(0);
      victim.child.kill('SIGKILL');
      await victim.exited;
      await lock.query('SELECT pg_terminate_backend($1)', [waiting[0]?.pid]);
    } finally {
      await lock.query('ROLLBACK');
      await lock.end();
    }
    fakeA.setBehaviour({ kind: 'answer' });
    fakeB.setBehaviour({ kind: 'answer' });
    return { answer: await answer, victim: took as 'a' | 'b', providerCalls: () => providerCalls() - before.a - before.b };
  };

  it('never calls the provider again for a key whose replica was killed before its call committed (409 instead)', async () => {
    const { answer, victim, providerCalls: calls } = await crashBeforeCommit('crash-call', 'idem-crash');
    expect(answer.status).toBe(409);
    expect(await answer.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
    // A client retrying later does not run it either: whether the provider answered is unknown, so the key stays in flight for the window.
    const later = await chat('crash-call', 'idem-crash-later', 'crash me');
    expect(later.status).toBe(409);
    expect(calls()).toBe(1);
    expect(await callEvents('idem-crash')).toBe(0);
    expect(await callEvents('idem-crash-later')).toBe(0);
    await respawn(victim);
  });
});
