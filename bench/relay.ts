// npm run bench:relay — how fast the outbox relay empties a backlog onto each bus adapter: events/s
// from a full outbox to an empty one, with publishes pipelined (the relay as it runs) against the
// same relay sending one publish at a time and waiting for each acknowledgement (maxInFlight 1, how
// it worked before), in the same run. The outbox is PGlite for the in-process bus (the embedded
// default) and PostgreSQL for NATS JetStream and Redis Streams (how they are deployed); a broker or
// database that is not reachable is skipped with a line saying so.
// BENCH_EVENTS (default 10 000), BENCH_ROUNDS (default 3), BENCH_BATCH (rows per pass, default 200)
// and BENCH_ADAPTERS (memory,nats,redis) override; the services are the tests' (TEST_DATABASE_URL,
// TEST_NATS_URL, TEST_REDIS_URL), each run in a database and namespace of its own.
import { randomUUID } from 'node:crypto';
import { createPgliteDatabase, createPostgresDatabase, type Database } from '../src/platform/db/index.ts';
import { runMigrations } from '../src/platform/db/migrate.ts';
import { createMemoryBus } from '../src/platform/bus/memory.ts';
import { createNatsBus } from '../src/platform/bus/nats.ts';
import { createRedisBus } from '../src/platform/bus/redis.ts';
import type { EventBus } from '../src/platform/bus/port.ts';
import { appendEvents } from '../src/platform/events/outbox.ts';
import { createOutboxRelay } from '../src/platform/events/relay.ts';
import { deleteNatsStream, deleteRedisNamespace, natsTestOptions, redisTestOptions } from '../test/conformance/bus.fixtures.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { serviceUrls } from '../test/support/services.ts';
import { median } from './support/load.ts';
import { createRegistry } from '../src/modules.ts';

const events = Number(process.env.BENCH_EVENTS ?? 10_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
// config/default.yaml's outbox.batch_size.
const batchSize = Number(process.env.BENCH_BATCH ?? 200);
const adapters = (process.env.BENCH_ADAPTERS ?? 'memory,nats,redis').split(',');

interface Setup {
  readonly db: Database;
  readonly bus: EventBus;
  close(): Promise<void>;
}

/** A migrated database of its own on the PostgreSQL server, dropped by `drop`. */
async function postgresDatabase(): Promise<{ db: Database; drop: () => Promise<void> }> {
  const database = await createTestDatabase('blocks_bench_relay');
  const db = await createPostgresDatabase({ url: database.url });
  await runMigrations(db, createRegistry().migrations);
  return {
    db,
    drop: async () => {
      await db.close();
      await database.drop();
    },
  };
}

/** A broker bus in a namespace of its own over a PostgreSQL outbox; closing removes both. */
async function onBroker(bus: EventBus, deleteNamespace: () => Promise<void>): Promise<Setup> {
  const { db, drop } = await postgresDatabase();
  return {
    db,
    bus,
    close: async () => {
      await bus.close();
      await drop();
      await deleteNamespace();
    },
  };
}

const setups: Record<string, () => Promise<Setup>> = {
  async memory() {
    const db = await createPgliteDatabase();
    await runMigrations(db, createRegistry().migrations);
    const bus = createMemoryBus({ db });
    return {
      db,
      bus,
      close: async () => {
        await bus.close();
        await db.close();
      },
    };
  },
  async nats() {
    const options = natsTestOptions(serviceUrls.nats);
    return onBroker(await createNatsBus(options), () => deleteNatsStream(serviceUrls.nats, options.stream));
  },
  async redis() {
    const options = redisTestOptions(serviceUrls.redis);
    return onBroker(await createRedisBus(options), () => deleteRedisNamespace(serviceUrls.redis, options.streamKey));
  },
};

/** An `ai.request.completed` payload as the proxy writes it: the size of what the relay really moves. */
const callPayload = (i: number) => ({
  request_id: randomUUID(),
  tenant: 'bench',
  api_key_id: 'key-1',
  model: 'bench-model',
  provider: 'openai',
  deployment: 'primary',
  prompt_tokens: 41,
  completion_tokens: 17,
  cost_usd: 0.000_123,
  latency_ms: 212 + (i % 50),
  cached: false,
  attempts: [{ model: 'bench-model', deployment: 'primary', status: 200, latency_ms: 212 }],
  decision_id: randomUUID(),
});

async function fill(db: Database): Promise<void> {
  for (let start = 0; start < events; start += 1_000) {
    const batch = Array.from({ length: Math.min(1_000, events - start) }, (_, n) => ({
      event_type: 'ai.request.completed',
      source_service: 'autonomous.ai-router',
      payload: callPayload(start + n),
    }));
    await appendEvents(db, batch);
  }
}

/** Events/s for one relay emptying a full outbox. */
async function measure(setup: Setup, mode: 'one at a time' | 'pipelined'): Promise<number> {
  await fill(setup.db);
  // One at a time hides the in-process bus's batch publish too: each event is its own publish, awaited.
  const single: EventBus = {
    kind: setup.bus.kind,
    publish: (message) => setup.bus.publish(message),
    subscribe: (options, handler) => setup.bus.subscribe(options, handler),
    lag: (consumer) => setup.bus.lag(consumer),
    ping: () => setup.bus.ping(),
    close: () => setup.bus.close(),
  };
  const relay =
    mode === 'pipelined'
      ? createOutboxRelay({ db: setup.db, bus: setup.bus, batchSize })
      : createOutboxRelay({ db: setup.db, bus: single, batchSize, maxInFlight: 1 });
  const started = performance.now();
  const { published, failed } = await relay.flush();
  const seconds = (performance.now() - started) / 1000;
  if (published !== events || failed !== 0) throw new Error(`relay published ${published} of ${events} (${failed} failed)`);
  return published / seconds;
}

const rows: string[][] = [];
for (const adapter of adapters) {
  const make = setups[adapter];
  if (make === undefined) throw new Error(`unknown adapter ${adapter}: memory, nats or redis`);
  let setup: Setup;
  try {
    setup = await make();
  } catch (error) {
    console.log(`${adapter}: skipped (${error instanceof Error ? error.message : String(error)})`);
    continue;
  }
  // The in-process bus stores messages only for durable consumers, which live in the relay's own
  // process: one is subscribed there, as usage and learning are in Blocks. A broker stores what it is
  // given, and its consumers run in other processes, so none competes with the relay here.
  if (adapter === 'memory') await setup.bus.subscribe({ consumer: 'bench-relay', subject: 'ai.>', concurrency: 64 }, async () => undefined);
  const pipelined: number[] = [];
  const sequential: number[] = [];
  try {
    // Rounds alternate, so drift on a shared machine hits both alike.
    for (let round = 0; round < rounds; round += 1) {
      sequential.push(await measure(setup, 'one at a time'));
      pipelined.push(await measure(setup, 'pipelined'));
    }
  } finally {
    await setup.close();
  }
  const base = median(sequential);
  const now = median(pipelined);
  rows.push([adapter, setup.db.kind, base.toFixed(0), now.toFixed(0), `${(now / base).toFixed(1)}x`]);
}

const header = ['bus', 'outbox on', 'one at a time (events/s)', 'pipelined (events/s)', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
console.log(`\nRelay throughput, ${events} events per run, median of ${rounds} runs\n`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const row of rows) console.log(line(row));
