// npm run bench:route — first the decision alone, in-process, over a 50-model catalog against
// counting the prompt's tokens (bench/route-decide.ts); then POST /api/v1/autonomous/ai/route
// through the gateway (embedded defaults) against a bare fastify route on this machine, the
// ceiling. Rounds alternate between targets and the medians are printed. BENCH_SECONDS,
// BENCH_ROUNDS, BENCH_CONNECTIONS and BENCH_DECISIONS override the defaults.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { formatTable, medianOf, runLoad, type LoadResult, type LoadTarget } from './support/load.ts';
import { formatDecideBench, runDecideBench } from './route-decide.ts';

// Before the server starts, so that its process does not compete with the measurement.
console.log(`bench:route — node ${process.version}\n`);
console.log(formatDecideBench(runDecideBench()));
console.log('');

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connectionSets = (process.env.BENCH_CONNECTIONS ?? '10,50,100').split(',').map(Number);

const server = spawn(process.execPath, [new URL('./route-server.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
interface BenchUrls {
  gateway: string;
  autonomous: string;
  bare: string;
  /** Holds ai:route only. */
  apiKey: string;
}
const urls = await new Promise<BenchUrls>((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  createInterface({ input: server.stdout }).once('line', (line) => resolve(JSON.parse(line) as BenchUrls));
});

const body = JSON.stringify({
  task_type: 'code',
  complexity: 'medium',
  context: { prompt: 'Write a TypeScript function that merges two sorted arrays without allocating more than one new array.' },
});
const post = { method: 'POST' as const, body, headers: { 'content-type': 'application/json' } };
const targets: LoadTarget[] = [
  { label: 'bare fastify route', url: `${urls.bare}/route`, ...post },
  // Every request is authenticated: the gateway figure includes the access decision and the rate limit.
  {
    label: 'gateway /ai/route',
    url: `${urls.gateway}/api/v1/autonomous/ai/route`,
    ...post,
    headers: { ...post.headers, 'x-api-key': urls.apiKey },
  },
];

console.log(`bench:route — ${rounds} rounds × ${seconds}s per target, medians; node ${process.version}, embedded defaults`);
await runLoad(targets[1] as LoadTarget, { seconds: 2, connections: 10 }); // warm-up: JIT, PGlite caches
for (const connections of connectionSets) {
  const byTarget = new Map<string, LoadResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const result = await runLoad(target, { seconds, connections });
      byTarget.set(target.label, [...(byTarget.get(target.label) ?? []), result]);
    }
  }
  const [bare, gateway] = targets.map((t) => medianOf(byTarget.get(t.label) ?? [])) as [LoadResult, LoadResult];
  console.log(`\n${connections} connections`);
  console.log(formatTable([bare, gateway]));
  const errorRate = (gateway.errors + gateway.non2xx) / Math.max(1, gateway.requests);
  console.log(
    `gateway/bare throughput ratio ${(gateway.rps / bare.rps).toFixed(2)}; p99 ratio ${(gateway.p99 / bare.p99).toFixed(2)}; ` +
      `gateway error rate ${(errorRate * 100).toFixed(3)}%`,
  );
  console.log(
    `targets: >=5000 req/s with p99 < 25 ms and no errors → ${gateway.rps >= 5000 && gateway.p99 < 25 && errorRate === 0 ? 'met' : 'NOT met'}; ` +
      `spec floor p95 < 500 ms, > 1000 req/s, < 1% errors → ${gateway.p95 < 500 && gateway.rps > 1000 && errorRate < 0.01 ? 'met' : 'NOT met'}`,
  );
}
server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
