// npm run bench:gateway — what the gateway's checks cost: GET /api/v1/collaborative (the service
// info route: scope service:read, a constant body, no database, cache or bus work per request)
// through the gateway with the access decision and the rate limit on, against the same route with
// them off, all measured in the same run with autocannon; rounds alternate between targets and the
// medians are printed side by side with the cost of the checks (throughput lost, p50/p99 added).
// Target: the checks cost under 20 % of throughput and under 2 ms at p99.
//
// Targets (bench/gateway-server.ts serves them, in a process of its own):
// - `API key` and `JWT` go to the gateway as `blocks start` runs it: the access decision, the
//   tenant's context rules, the scope check, then the rate limiter (in memory: startBenchBlocks
//   reads no REDIS_URL), which counts every request but is sized never to refuse one. An API key
//   costs a SHA-256 and a cache lookup. The JWT comes from the gateway's own POST /oauth/token for a
//   client holding service:read (a fresh one per round) and is sent with every request, as clients
//   do; the gateway checks its signature once and remembers it until it expires, so the rows show
//   that steady state, and the in-process part prints what a token's first request adds;
// - `checks off` is the baseline. No configuration turns the checks off, and a route cannot be
//   made `public` without editing src/, so it is a twin of the gateway's app in the same process:
//   the same createHttpServer with the same options (hooks, logging, metrics, security headers,
//   CORS, JSON limits) and the same route plugin (the collaborative module, mounted as the gateway
//   mounts it), but an `access` whose hook hands every request the caller that identity verified
//   once at start, without looking at the request, and no rate-limit hook. It gets the same API key
//   header, unread. Its router holds only this service's routes, the gateway's all of them: one
//   radix-tree lookup either way;
// - `API key, no limiter`: the twin with identity's real access decision and no rate-limit hook,
//   which splits the cost between authentication and the limiter.
//
// First, in process: the same four targets called one at a time through fastify's inject (no
// socket, no load generator), taking turns by 50 calls so that whatever else runs on the machine
// slows them alike; then the signature check of a token alone.
//
// Beside req/s and latency, the server's CPU time per request (all its threads, asked over IPC
// around each round) is printed. `CPU-bound cost`, 1 − (CPU/request off ÷ CPU/request on), is the
// throughput the checks would cost a server with cores to itself; here the load generator and
// anything else running share two cores with it, which moves req/s and p99 from round to round.
//
// BENCH_SECONDS (10), BENCH_ROUNDS (3) and BENCH_CONNECTIONS (10,50) change the load,
// BENCH_INJECT_CALLS (20000) the in-process calls per target;
// BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the server process there (open it in Chrome
// DevTools or speedscope) to see where the time goes.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { median, medianOf, runLoad, type LoadResult, type LoadTarget } from './support/load.ts';
import type { BenchRequest, InjectResult, InjectTarget } from './gateway-server.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connectionSets = (process.env.BENCH_CONNECTIONS ?? '10,50').split(',').map(Number);
const profileDir = process.env.BENCH_CPU_PROF;
const injectCalls = Number(process.env.BENCH_INJECT_CALLS ?? 20_000);

const TARGET_THROUGHPUT_COST = 0.2;
const TARGET_ADDED_P99_MS = 2;
const PATH = '/api/v1/collaborative';
const NO_LIMITER = 'API key, no limiter';

interface BenchServer {
  gateway: string;
  unchecked: string;
  authOnly: string;
  apiKey: string;
  clientId: string;
  clientSecret: string;
  scope: string;
  limiter: string;
}

const server = spawn(
  process.execPath,
  [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), new URL('./gateway-server.ts', import.meta.url).pathname],
  // The IPC channel asks the server for its CPU time around each round.
  { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
);
const urls = await new Promise<BenchServer>((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  createInterface({ input: server.stdout as NodeJS.ReadableStream }).once('line', (line) => resolve(JSON.parse(line) as BenchServer));
});

/** One question to the server over IPC, one answer. */
const ask = <T>(request: BenchRequest): Promise<T> =>
  new Promise((resolve, reject) => {
    server.once('message', (message: T | { error: string }) => {
      if (typeof message === 'object' && message !== null && 'error' in message) reject(new Error(message.error));
      else resolve(message);
    });
    server.send(request);
  });
const serverCpuUs = async (): Promise<number> => (await ask<{ cpuUs: number }>('cpu')).cpuUs;

const signed = (value: number, digits = 2): string => `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;

function formatColumns(header: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

/** A fresh token per round: a run longer than the token's lifetime must not turn into 401s. */
const issueToken = async (): Promise<string> => {
  const response = await fetch(`${urls.gateway}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: urls.clientId,
      client_secret: urls.clientSecret,
      scope: urls.scope,
    }).toString(),
  });
  if (response.status !== 200) throw new Error(`POST /oauth/token answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { access_token: string }).access_token;
};

const keyed = { 'x-api-key': urls.apiKey };
const targetsWith = (token: string): (LoadTarget & InjectTarget & { headers: Record<string, string> })[] => [
  { label: 'checks off', app: 'unchecked', url: `${urls.unchecked}${PATH}`, headers: keyed },
  { label: 'API key', app: 'gateway', url: `${urls.gateway}${PATH}`, headers: keyed },
  { label: 'JWT', app: 'gateway', url: `${urls.gateway}${PATH}`, headers: { authorization: `Bearer ${token}` } },
  { label: NO_LIMITER, app: 'authOnly', url: `${urls.authOnly}${PATH}`, headers: keyed },
];

// Before any load: each target answers what it should, so no figure below measures a refusal.
const probe = async (url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; limited: boolean }> => {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.text(), limited: response.headers.has('ratelimit') };
};
const firstToken = await issueToken();
const firstTargets = targetsWith(firstToken);
const answers = await Promise.all(firstTargets.map((t) => probe(t.url, t.headers)));
const [offAnswer] = answers;
for (const [i, answer] of answers.entries()) {
  const target = firstTargets[i] as LoadTarget;
  if (answer.status !== 200) throw new Error(`${target.label}: GET ${PATH} answered ${answer.status}: ${answer.body}`);
  if (answer.body !== offAnswer?.body) throw new Error(`${target.label}: GET ${PATH} answered another body than the baseline`);
}
const anonymous = await Promise.all([probe(`${urls.gateway}${PATH}`), probe(`${urls.unchecked}${PATH}`), probe(`${urls.authOnly}${PATH}`)]);
if (anonymous.map((a) => a.status).join() !== '401,200,401') {
  throw new Error(`without a credential: gateway, checks off, no limiter answered ${anonymous.map((a) => a.status).join(', ')}`);
}
if (answers.map((a) => a.limited).join() !== 'false,true,true,false') throw new Error('the rate limiter is not where it should be');

console.log(
  `bench:gateway — GET ${PATH} (service info, no database work), ${rounds} rounds × ${seconds}s per target, medians; ` +
    `node ${process.version}, embedded defaults, rate limiter: ${urls.limiter}`,
);
console.log('checked: without a credential the gateway answers 401 and the checks-off twin 200; every target answers the same body');

// In process first, one request at a time, while nothing else of this benchmark runs.
const inProcess = await ask<{ inject: InjectResult[] }>({
  inject: {
    path: PATH,
    calls: injectCalls,
    block: 50,
    targets: firstTargets.map(({ label, app, headers }) => ({ label, app, headers })),
  },
});
const [offInProcess] = inProcess.inject;
console.log(
  `\nin process (fastify inject, one request at a time, no socket), µs per request; ${injectCalls} calls per target, taking turns by 50`,
);
console.log(
  formatColumns(
    ['target', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs'],
    inProcess.inject.map((row) => [
      row.label,
      row.p50Us.toFixed(1),
      row.p99Us.toFixed(1),
      row === offInProcess ? '' : signed(row.p50Us - (offInProcess?.p50Us ?? 0), 1),
      row === offInProcess ? '' : signed(row.p99Us - (offInProcess?.p99Us ?? 0), 1),
    ]),
  ),
);
const signatureCalls = Math.max(100, Math.round(injectCalls / 10));
const { signature } = await ask<{ signature: Omit<InjectResult, 'label'> }>({
  signature: { token: firstToken, calls: signatureCalls },
});
console.log(
  `a token's first request adds its signature check (then it is remembered until exp): ` +
    `p50 ${signature.p50Us.toFixed(1)} µs, p99 ${signature.p99Us.toFixed(1)} µs (the verifier alone, ${signatureCalls} calls)`,
);

for (const target of firstTargets) await runLoad(target, { seconds: 2, connections: 10 }); // warm-up: JIT, key caches

interface Measured {
  readonly load: LoadResult;
  /** The server process's CPU time (every thread: JWT signatures are checked on libuv's pool) per answered request. */
  readonly cpuUs: number;
}

for (const connections of connectionSets) {
  const byTarget = new Map<string, Measured[]>();
  for (let round = 0; round < rounds; round++) {
    for (const target of targetsWith(await issueToken())) {
      const before = await serverCpuUs();
      const load = await runLoad(target, { seconds, connections });
      const cpuUs = (await serverCpuUs()) - before;
      byTarget.set(target.label, [...(byTarget.get(target.label) ?? []), { load, cpuUs: cpuUs / Math.max(1, load.requests) }]);
    }
  }
  const rows = firstTargets.map((t) => {
    const measured = byTarget.get(t.label) ?? [];
    return { ...medianOf(measured.map((m) => m.load)), cpuUs: median(measured.map((m) => m.cpuUs)) };
  });
  const [off, ...checked] = rows as [(typeof rows)[number], ...typeof rows];
  console.log(`\n${connections} connections`);
  console.log(
    formatColumns(
      ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'throughput', 'added p50', 'added p99', 'CPU-bound cost', 'errors'],
      rows.map((row) => [
        row.label,
        row.rps.toFixed(0),
        row.p50.toFixed(2),
        row.p99.toFixed(2),
        row.cpuUs.toFixed(0),
        row === off ? '(baseline)' : `${((row.rps / off.rps) * 100).toFixed(1)} %`,
        row === off ? '' : `${signed(row.p50 - off.p50)} ms`,
        row === off ? '' : `${signed(row.p99 - off.p99)} ms`,
        row === off ? '' : `${((1 - off.cpuUs / row.cpuUs) * 100).toFixed(1)} %`,
        String(row.errors + row.non2xx),
      ]),
    ),
  );
  for (const row of checked) {
    // The no-limiter twin only splits the cost; the target is about the gateway with every check.
    if (row.label === NO_LIMITER) continue;
    const cost = 1 - row.rps / off.rps;
    const added99 = row.p99 - off.p99;
    const errors = row.errors + row.non2xx;
    const met = cost < TARGET_THROUGHPUT_COST && added99 < TARGET_ADDED_P99_MS && errors === 0;
    console.log(
      `${row.label}: checks cost ${(cost * 100).toFixed(1)} % of throughput and ${added99.toFixed(2)} ms at p99 → ` +
        `target (< ${TARGET_THROUGHPUT_COST * 100} %, < ${TARGET_ADDED_P99_MS} ms, no errors) ${met ? 'met' : 'NOT met'}`,
    );
  }
}
server.kill('SIGTERM');
await new Promise((resolve) => server.once('exit', resolve));
if (profileDir) console.log(`\nserver CPU profile written to ${profileDir}`);
