// Blocks for bench/proxy.ts in a process of its own, on the embedded defaults, with a one-model
// catalog whose provider is the fake named by BENCH_PROVIDER_URL (an OpenAI-compatible base URL).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '../src/platform/config/load-config.ts';
import { createLogger } from '../src/platform/logger.ts';
import { startBlocks } from '../src/start.ts';

const providerUrl = process.env.BENCH_PROVIDER_URL;
if (providerUrl === undefined) throw new Error('BENCH_PROVIDER_URL is required');
const dataDir = mkdtempSync(join(tmpdir(), 'blocks-bench-proxy-'));
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
const config = loadConfig({
  configDir: new URL('../config', import.meta.url).pathname,
  // DATABASE_URL, when set, measures the proxy on PostgreSQL instead of the embedded PGlite.
  env: {
    BLOCKS_ENV: 'production',
    BLOCKS_DATA_DIR: dataDir,
    ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
  },
  // The load comes from one address: the limiter runs on every request (its cost is measured) but never refuses.
  overrides: {
    // Production wants a configured key-encryption key; a throwaway one serves a benchmark.
    auth: { key_encryption_key: randomBytes(32).toString('base64') },
    rate_limits: { tiers: { default: { limit: 1_000_000_000, period: '1s', burst: 1_000_000_000 } } },
    ai: { catalog_file: catalogFile, providers: { bench: { protocol: 'openai', base_url: providerUrl, region: 'us' } } },
  },
});
// Production logging (one line per request) goes to /dev/null: its cost is measured, its output is not kept.
const logger = createLogger({
  level: config.log.level,
  service: 'bench',
  version: 'bench',
  destination: pino.destination({ dest: '/dev/null', sync: false }),
});
const blocks = await startBlocks({
  config,
  roles: ['gateway', 'autonomous', 'collaborative'],
  version: 'bench',
  ephemeralPorts: true,
  logger,
});
process.stdout.write(`${JSON.stringify({ gateway: blocks.urls.gateway, autonomous: blocks.urls.autonomous })}\n`);

const stop = async (): Promise<void> => {
  const backlog = await blocks.platform.relay.backlog();
  const events = await blocks.platform.db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM events WHERE event_type IN ('ai.request.completed', 'ai.request.failed')",
  );
  await blocks.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.stderr.write(`server stopped (call events written: ${events.rows[0]?.n ?? 0}, outbox backlog at stop: ${backlog})\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
