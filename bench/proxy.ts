// npm run bench:proxy — POST /v1/chat/completions through Blocks (embedded defaults) to a fake
// OpenAI provider that answers at once, against calling that provider directly; both servers run
// in processes of their own. Rounds alternate between targets and the medians are printed, with
// the latency Blocks adds and its share of the direct throughput.
// BENCH_SECONDS, BENCH_ROUNDS and BENCH_CONNECTIONS override the defaults.
import { startBenchChild, stopBenchChild } from './support/child.ts';
import { chatCompletionBody, postJson } from './support/chat.ts';
import { formatTable, medianOf, runLoad, type LoadResult, type LoadTarget } from './support/load.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connectionSets = (process.env.BENCH_CONNECTIONS ?? '10,50').split(',').map(Number);

const provider = startBenchChild<{ baseUrl: string }>('proxy-provider.ts');
const { baseUrl } = await provider.ready;
const server = startBenchChild<{ gateway: string; autonomous: string; apiKey: string }>('proxy-server.ts', {
  env: { BENCH_PROVIDER_URL: baseUrl },
});
const urls = await server.ready;

// The provider gets no key (the fake takes any); Blocks gets its own, as an application sends one.
const keyed = { authorization: `Bearer ${urls.apiKey}` };
const direct: LoadTarget = {
  label: 'provider directly',
  url: `${baseUrl}/chat/completions`,
  ...postJson(chatCompletionBody('bench-model')),
};
const viaService: LoadTarget = {
  label: 'Blocks :8001 /v1',
  url: `${urls.autonomous}/v1/chat/completions`,
  ...postJson(chatCompletionBody('bench-model'), keyed),
};
const viaGateway: LoadTarget = {
  label: 'Blocks gateway /v1',
  url: `${urls.gateway}/v1/chat/completions`,
  ...postJson(chatCompletionBody('bench-model'), keyed),
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
for (const child of [server.child, provider.child]) await stopBenchChild(child);
