// npm run bench:overload — how much memory Blocks (embedded defaults: PGlite, the in-process bus
// backed by it) holds under proxy overload and with much stored data, and whether it gives it
// back. One Blocks server (bench/proxy-server.ts, with the fake provider of bench/proxy-provider.ts)
// runs at a time in a process of its own on one data directory; its RSS is read from /proc every
// second, and a memory probe preloaded into it (bench/support/memory-probe.ts) says where the memory
// is (main heap, external, the PGlite worker's heap and WASM memory). Phases:
// 1. idle, empty database: start, then BENCH_IDLE_SECONDS without load (the baseline);
// 2. overload: BENCH_CONNECTIONS connections of POST /v1/chat/completions for BENCH_SECONDS, then
//    BENCH_IDLE_SECONDS without load. The usage counter's lag (durable consumer ai-usage-daily, from
//    GET /metrics: events still in the outbox plus messages the consumer has not acked) is read when
//    the load stops and then every second until it is 0;
// 3. idle, stored data: the server stops, BENCH_PREFILL ai_outcomes rows and as many published call
//    events (recorded over the last 90 minutes, all within warm-up's reach) are added to what the
//    load left, and it starts again on that directory, then BENCH_IDLE_SECONDS without load.
// Each row prints RSS at its start, the peak, and 30 s and 60 s in (idle) or after the load stopped.
// Defaults: BENCH_SECONDS=120, BENCH_CONNECTIONS=50, BENCH_IDLE_SECONDS=60, BENCH_PREFILL=200000.
// BENCH_HEAP_SNAPSHOT=<dir> writes a heap snapshot of the server's main thread when the load stops;
// NODE_OPTIONS reaches the server too (e.g. --heapsnapshot-near-heap-limit=1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteDatabase } from '../src/platform/db/index.ts';
import { startBenchChild, stopBenchChild, type BenchChild } from './support/child.ts';
import { chatCompletionBody, postJson } from './support/chat.ts';
import { formatTable, runLoad, type LoadResult } from './support/load.ts';
import { describeMappings, describeMemory, mb, sampleMemory, type MemorySampler } from './support/memory-sampler.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 120);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const prefill = Number(process.env.BENCH_PREFILL ?? 200_000);
const snapshotDir = process.env.BENCH_HEAP_SNAPSHOT;
const USAGE_CONSUMER = 'ai-usage-daily';
const DRAIN_MAX_MS = 15 * 60_000;

interface ServerUrls {
  readonly gateway: string;
  readonly autonomous: string;
  readonly apiKey: string;
}
interface RunningServer extends BenchChild<ServerUrls> {
  readonly memory: MemorySampler;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const dataDir = mkdtempSync(join(tmpdir(), 'blocks-overload-'));

const provider = startBenchChild<{ baseUrl: string }>('proxy-provider.ts');
const { baseUrl } = await provider.ready;

const startServer = (): RunningServer => {
  const server = startBenchChild<ServerUrls>('proxy-server.ts', {
    env: { BENCH_PROVIDER_URL: baseUrl, BENCH_DATA_DIR: dataDir },
    execArgv: ['--import', new URL('./support/memory-probe.ts', import.meta.url).pathname],
    ipc: true,
  });
  return { ...server, memory: sampleMemory(server.child) };
};

/** What the usage counter has yet to count: call events not yet relayed, and relayed ones not yet acked. */
const usageLag = async (autonomous: string): Promise<{ outbox: number; consumer: number }> => {
  const text = await (await fetch(`${autonomous}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
  return {
    outbox: value(/^blocks_outbox_backlog(?:\{[^}]*\})? (\S+)$/m),
    consumer: value(new RegExp(`^blocks_bus_consumer_lag\\{[^}]*consumer="${USAGE_CONSUMER}"[^}]*\\} (\\S+)$`, 'm')),
  };
};

interface Row {
  readonly label: string;
  readonly start: number;
  readonly peak: number;
  readonly after30: number;
  readonly after60: number;
  readonly note: string;
}

/** Waits `idleSeconds` from `from` (ms on the sampler's clock), reading RSS 30 s and 60 s in. */
const idleFor = async (memory: MemorySampler, from: number): Promise<{ after30: number; after60: number }> => {
  const at = async (offsetS: number): Promise<number> => {
    const wait = from + offsetS * 1_000 - memory.now();
    if (wait > 0) await sleep(wait);
    return memory.rssNow();
  };
  const after30 = await at(Math.min(30, idleSeconds));
  const after60 = await at(Math.min(60, idleSeconds));
  if (idleSeconds > 60) await at(idleSeconds);
  return { after30, after60 };
};

/** Starts a server on the data directory and keeps it idle; the row's peak includes starting. */
const idlePhase = async (label: string): Promise<{ row: Row; server: RunningServer; urls: ServerUrls }> => {
  const server = startServer();
  const urls = await server.ready;
  const readyAt = server.memory.now();
  const start = server.memory.rssNow();
  const { after30, after60 } = await idleFor(server.memory, readyAt);
  const { rss: peak, breakdown } = server.memory.peak(0);
  const settled = await server.memory.breakdown();
  console.log(`  ${label}: ready in ${(readyAt / 1000).toFixed(1)} s`);
  console.log(`    at the peak: ${describeMemory(breakdown)}`);
  console.log(`    settled:     ${describeMemory(settled)}`);
  console.log(`                 ${describeMappings(server.child.pid as number)}`);
  return { row: { label, start, peak, after30, after60, note: `ready in ${(readyAt / 1000).toFixed(1)} s` }, server, urls };
};

/**
 * Adds `rows` proxied outcomes and as many published call events, spread over the last 90 minutes
 * (within the warm-up's ten 10-minute half-lives), shaped as the proxy writes them. The server must be stopped.
 */
const prefillDatabase = async (rows: number): Promise<{ outcomes: number; events: number }> => {
  const db = await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
  try {
    for (let from = 1; from <= rows; from += 20_000) {
      const to = Math.min(rows, from + 19_999);
      await db.query(
        `INSERT INTO ai_outcomes (id, decision_id, request_id, source, tenant, model, task_type, complexity, success,
                                  latency_ms, prompt_tokens, completion_tokens, cost_usd, confidence, attempts, recorded_at)
         SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'proxy', 'default', 'bench-model', 'chat', 'low', true,
                2 + i % 40, 61, 17, 0.0000193, 0.9,
                jsonb_build_array(jsonb_build_object('model', 'bench-model', 'outcome', 'success', 'kind', null, 'latency_ms', 2 + i % 40)),
                now() - (i % 5400) * interval '1 second'
         FROM generate_series($1::int, $2::int) AS i`,
        [from, to],
      );
      await db.query(
        `INSERT INTO events (event_id, event_type, source_service, target_services, payload, "timestamp", correlation_id,
                             ordering_key, traceparent, published_at)
         SELECT gen_random_uuid(), 'ai.request.completed', 'autonomous.ai-router', '{}',
                jsonb_build_object('request_id', gen_random_uuid(), 'decision_id', gen_random_uuid(), 'tenant', 'default',
                  'api_key_id', gen_random_uuid(), 'model', 'bench-model', 'provider', 'bench', 'deployment', 'bench',
                  'task_type', 'chat', 'complexity', 'low', 'confidence', 0.9, 'stream', false, 'cached', false,
                  'prompt_tokens', 61, 'completion_tokens', 17, 'cost_usd', 0.0000193, 'latency_ms', 2 + i % 40,
                  'attempts', jsonb_build_array(jsonb_build_object('model', 'bench-model', 'provider', 'bench',
                    'deployment', 'bench', 'outcome', 'success', 'kind', null, 'latency_ms', 2 + i % 40))),
                now() - (i % 5400) * interval '1 second', 'bench-prefill-' || i, 'default',
                '00-' || md5(i::text) || '-' || left(md5((i + 1)::text), 16) || '-01', now()
         FROM generate_series($1::int, $2::int) AS i`,
        [from, to],
      );
    }
    const count = async (table: string): Promise<number> =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? 0;
    return { outcomes: await count('ai_outcomes'), events: await count('events') };
  } finally {
    await db.close();
  }
};

console.log(
  `bench:overload — ${connections} connections × ${seconds} s of POST /v1/chat/completions, idle phases of ${idleSeconds} s, ` +
    `prefill ${prefill} rows; node ${process.version}, embedded defaults (PGlite, in-process bus)`,
);
const rows: Row[] = [];

// 1. The baseline: a fresh start on an empty database, idle.
console.log('\n1. idle, empty database');
const first = await idlePhase('idle, empty database');
rows.push(first.row);

// 2. Overload, then the same time idle again; the usage counter's lag is followed until it is 0.
console.log(`\n2. ${connections} connections for ${seconds} s`);
const { server, urls } = first;
const target = {
  label: 'Blocks :8001 /v1',
  url: `${urls.autonomous}/v1/chat/completions`,
  ...postJson(chatCompletionBody('bench-model'), { authorization: `Bearer ${urls.apiKey}` }),
};
const loadStart = server.memory.now();
const loadStartRss = server.memory.rssNow();
const load: LoadResult = await runLoad(target, { seconds, connections });
const loadEnd = server.memory.now();
const lagAtStop = await usageLag(urls.autonomous);
const { rss: loadPeak, breakdown: atLoadPeak } = server.memory.peak(loadStart, loadEnd);
const atStop = await server.memory.breakdown();
const mappingsAtStop = describeMappings(server.child.pid as number);
if (snapshotDir !== undefined) console.log(`  heap snapshot: ${await server.memory.heapSnapshot(snapshotDir)}`);
const drained = (async (): Promise<number | undefined> => {
  for (let lag = lagAtStop; server.memory.now() - loadEnd < DRAIN_MAX_MS; lag = await usageLag(urls.autonomous)) {
    if (lag.outbox === 0 && lag.consumer === 0) return server.memory.now() - loadEnd;
    await sleep(1_000);
  }
  return undefined;
})();
const settled = await idleFor(server.memory, loadEnd);
const drainMs = await drained;
const rssDrained = server.memory.rssNow();
const afterLoad = await server.memory.breakdown();
console.log(formatTable([load]));
console.log(`  at the load's peak: ${describeMemory(atLoadPeak)}`);
console.log(`  when the load stopped: ${describeMemory(atStop)}`);
console.log(`                         ${mappingsAtStop}`);
console.log(`  settled: ${describeMemory(afterLoad)}`);
console.log(`           ${describeMappings(server.child.pid as number)}`);
const lagNote =
  `usage lag at stop ${lagAtStop.outbox + lagAtStop.consumer} (outbox ${lagAtStop.outbox}, consumer ${lagAtStop.consumer}), ` +
  `0 after ${drainMs === undefined ? `more than ${DRAIN_MAX_MS / 1000}` : (drainMs / 1000).toFixed(0)} s (RSS then ${mb(rssDrained)} MB)`;
console.log(`  ${lagNote}`);
rows.push({
  label: `${connections} connections × ${seconds} s`,
  start: loadStartRss,
  peak: loadPeak,
  ...settled,
  note: `${load.rps.toFixed(0)} req/s, ${load.errors + load.non2xx} errors; ${lagNote}`,
});
server.memory.stop();
await stopBenchChild(server.child);

// 3. The same directory with much more stored: a restart must not need more memory for it.
console.log(`\n3. idle, ${prefill} more stored outcomes and call events`);
const stored = await prefillDatabase(prefill);
const third = await idlePhase(`idle, ${stored.outcomes} outcomes, ${stored.events} events stored`);
rows.push(third.row);
third.server.memory.stop();
await stopBenchChild(third.server.child);
await stopBenchChild(provider.child);
rmSync(dataDir, { recursive: true, force: true });

console.log('\nRSS (MB): start, peak (idle rows: including starting), 30 s and 60 s in (idle) or after the load stopped');
const widths = [Math.max(...rows.map((r) => r.label.length)), 6, 6, 6, 6];
const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[0] as number) : c.padStart(6))).join('  ');
console.log(line(['phase', 'start', 'peak', '+30 s', '+60 s']));
for (const row of rows) console.log(`${line([row.label, mb(row.start), mb(row.peak), mb(row.after30), mb(row.after60)])}  ${row.note}`);
