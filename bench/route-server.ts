// Serves the two targets of bench/route.ts in a process of its own, so the load generator does
// not share an event loop with them: Blocks on the embedded defaults, and a bare fastify route.
import Fastify from 'fastify';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/platform/config/load-config.ts';
import { createLogger } from '../src/platform/logger.ts';
import { startBlocks } from '../src/start.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'blocks-bench-'));
const config = loadConfig({
  configDir: new URL('../config', import.meta.url).pathname,
  env: { BLOCKS_ENV: 'production', BLOCKS_DATA_DIR: dataDir },
  // The load comes from one address: the limiter runs on every request (its cost is measured) but never refuses.
  overrides: {
    // Production wants a configured key-encryption key; a throwaway one serves a benchmark.
    auth: { key_encryption_key: randomBytes(32).toString('base64') },
    rate_limits: { tiers: { default: { limit: 1_000_000_000, period: '1s', burst: 1_000_000_000 } } },
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

const bare = Fastify();
bare.post('/route', async () => ({ selected_model: 'm', confidence: 0.9, routing_reason: 'bare', estimated_cost: 0.0001 }));
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });

process.stdout.write(`${JSON.stringify({ gateway: blocks.urls.gateway, autonomous: blocks.urls.autonomous, bare: bareUrl })}\n`);

const stop = async (): Promise<void> => {
  const backlog = await blocks.platform.relay.backlog();
  await bare.close();
  await blocks.close();
  rmSync(dataDir, { recursive: true, force: true });
  process.stderr.write(`server stopped (outbox backlog at stop: ${backlog})\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
