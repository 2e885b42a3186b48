// npm run bench:crash — Blocks killed with SIGKILL while it answers AI calls, five times, restarted
// on its data each time: answered calls (what a client was told) against the call events stored and
// what usage and learning counted once the counters caught up. On the embedded defaults and, when
// they answer, on PostgreSQL + NATS JetStream. Lost = answered calls without an event plus events
// usage never counted; double = usage counts beyond the events. BENCH_CYCLES (5), BENCH_LOAD_MS (4000) and
// BENCH_CONCURRENCY (32) override.
import { runCrashCycles, type CrashCounts } from '../test/support/crash-cycles.ts';
import { probeRealServices, realServicesEnv } from '../test/support/real-services.ts';

const cycles = Number(process.env.BENCH_CYCLES ?? 5);
const loadMs = Number(process.env.BENCH_LOAD_MS ?? 4_000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);

const rows: Array<[string, CrashCounts]> = [];
rows.push(['embedded (PGlite, in-process bus)', await runCrashCycles({ cycles, loadMs, concurrency, drainTimeoutMs: 300_000 })]);
if (await probeRealServices()) {
  const services = await realServicesEnv('nats');
  try {
    rows.push([
      'PostgreSQL + NATS JetStream',
      await runCrashCycles({ cycles, loadMs, concurrency, env: services.env, drainTimeoutMs: 300_000 }),
    ]);
  } finally {
    await services.cleanup();
  }
} else {
  console.log('PostgreSQL + NATS JetStream: skipped (not reachable)');
}

console.log(`\n${cycles} × kill -9 under ${concurrency} callers (${loadMs} ms of calls each), restarted on the same data\n`);
console.log('| defaults | kills | answered | events | usage counted | learning stored | lost | double |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [name, c] of rows) {
  // Answered without an event, or stored as an event and never counted.
  const lost = Math.max(0, c.answered - c.events) + Math.max(0, c.events - c.usage);
  const double = Math.max(0, c.usage - c.events);
  console.log(`| ${name} | ${c.kills} | ${c.answered} | ${c.events} | ${c.usage} | ${c.outcomes} | ${lost} | ${double} |`);
}
