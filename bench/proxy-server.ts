// Blocks for bench/proxy.ts in a process of its own, on the embedded defaults (PostgreSQL with
// DATABASE_URL), with a one-model catalog whose provider is the fake named by BENCH_PROVIDER_URL
// (an OpenAI-compatible base URL). The first line on stdout names its URLs and the API key (scope
// ai:invoke) the load sends.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { startBenchBlocks } from './support/bench-blocks.ts';

const providerUrl = process.env.BENCH_PROVIDER_URL;
if (providerUrl === undefined) throw new Error('BENCH_PROVIDER_URL is required');
const bench = await startBenchBlocks({
  scopes: ['ai:invoke'],
  prepare: (dataDir) => {
    const catalogFile = join(dataDir, 'models.yaml');
    writeFileSync(
      catalogFile,
      toYaml({
        models: [
          {
            provider: 'bench',
            model: 'bench-model',
            task_types: ['chat'],
            context_window: 128000,
            input_price_per_mtok: 0.15,
            output_price_per_mtok: 0.6,
            quality: { chat: { low: 0.9, medium: 0.9, high: 0.9 } },
            typical_latency_ms: 100,
          },
        ],
      }),
    );
    return { ai: { catalog_file: catalogFile, providers: { bench: { protocol: 'openai', base_url: providerUrl, region: 'us' } } } };
  },
});
const { blocks } = bench;
process.stdout.write(`${JSON.stringify({ gateway: blocks.urls.gateway, autonomous: blocks.urls.autonomous, apiKey: bench.apiKey })}\n`);

const stop = async (): Promise<void> => {
  const backlog = await blocks.platform.relay.backlog();
  const events = await blocks.platform.db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM events WHERE event_type IN ('ai.request.completed', 'ai.request.failed')",
  );
  await bench.close();
  process.stderr.write(`server stopped (call events written: ${events.rows[0]?.n ?? 0}, outbox backlog at stop: ${backlog})\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
