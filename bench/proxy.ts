// npm run bench:proxy — POST /v1/chat/completions through Blocks (embedded defaults) to a fake
// OpenAI provider that answers at once, against calling that provider directly; both servers run
// in processes of their own. Rounds alternate between targets and the medians are printed, with
// the latency Blocks adds and its share of the direct throughput.
// BENCH_SECONDS, BENCH_ROUNDS and BENCH_CONNECTIONS override the defaults.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { formatTable, medianOf, runLoad, type LoadResult, type LoadTarget } from './support/load.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connectionSets = (process.env.BENCH_CONNECTIONS ?? '10,50').split(',').map(Number);

const start = <T>(script: string, env: Record<string, string> = {}): { child: ChildProcess; ready: Promise<T> } => {
  const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const ready = new Promise<T>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => resolve(JSON.parse(line) as T));
  });
  return { child, ready };
};

const provider = start<{ baseUrl: string }>('./proxy-provider.ts');
const { baseUrl } = await provider.ready;
const server = start<{ gateway: string; autonomous: string; apiKey: string }>('./proxy-server.ts', { BENCH_PROVIDER_URL: baseUrl });
const urls = await server.ready;

// A fixed system prompt, as an application sends with every call, and a user message that differs
// on every request, so nothing downstream can answer from memory what it should compute.
const SYSTEM_PROMPT =
  'You are a terse assistant for a literature course. Answer in one sentence, in plain English, without quoting the text. ' +
  'If the question is not about literature, say that you only answer questions about literature.';
let sent = 0;
const request = (model: string) => (): string =>
  JSON.stringify({
    model,
    messages: [
      { role: 'system', content: SYSTEM_PROMPT },
      { role: 'user', content: `Summarise the plot of Hamlet in one sentence for student ${++sent}.` },
    ],
    max_tokens: 64,
  });
// The provider gets no key (the fake takes any); Blocks gets its own, as an application sends one.
const post = (makeBody: () => string, headers: Record<string, string> = {}) => ({
  method: 'POST' as const,
  makeBody,
  headers: { 'content-type': 'application/json', ...headers },
});
const keyed = { authorization: `Bearer ${urls.apiKey}` };
const direct: LoadTarget = { label: 'provider directly', url: `${baseUrl}/chat/completions`, ...post(request('bench-model')) };
const viaService: LoadTarget = {
  label: 'Blocks :8001 /v1',
  url: `${urls.autonomous}/v1/chat/completions`,
  ...post(request('bench-model'), keyed),
};
const viaGateway: LoadTarget = {
  label: 'Blocks gateway /v1',
  url: `${urls.gateway}/v1/chat/completions`,
  ...post(request('bench-model'), keyed),
};
const targets = [direct, viaService, viaGateway];

console.log(`bench:proxy — ${rounds} rounds × ${seconds}s per target, medians; node ${process.version}, embedded defaults`);
await runLoad(viaService, { seconds: 2, connections: 10 }); // warm-up: JIT, PGlite caches, provider connections
await runLoad(direct, { seconds: 1, connections: 10 });
for (const connections of connectionSets) {
  const byTarget = new Map<string, LoadResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const result = await runLoad(target, { seconds, connections });
      byTarget.set(target.label, [...(byTarget.get(target.label) ?? []), result]);
    }
  }
  const [bare, service, gateway] = targets.map((t) => medianOf(byTarget.get(t.label) ?? [])) as [LoadResult, LoadResult, LoadResult];
  console.log(`\n${connections} connections`);
  console.log(formatTable([bare, service, gateway]));
  for (const row of [service, gateway]) {
    const added50 = row.p50 - bare.p50;
    const added99 = row.p99 - bare.p99;
    const ratio = row.rps / bare.rps;
    const errors = row.errors + row.non2xx;
    console.log(
      `${row.label}: added latency p50 ${added50.toFixed(2)} ms, p99 ${added99.toFixed(2)} ms; throughput ${(ratio * 100).toFixed(0)}% of direct; ` +
        `errors ${errors} → target (added p99 < 5 ms, >= 50% of direct) ${added99 < 5 && ratio >= 0.5 && errors === 0 ? 'met' : 'NOT met'}`,
    );
  }
}
for (const child of [server.child, provider.child]) {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
}
