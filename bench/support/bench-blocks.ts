import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { startBlocks, type RunningBlocks } from '../../src/start.ts';

export interface BenchBlocks {
  readonly blocks: RunningBlocks;
  /** A fresh directory of this run, removed by `close`. */
  readonly dataDir: string;
  close(): Promise<void>;
}

/**
 * All three services in this process as production runs them, on the embedded defaults in a
 * fresh data directory (or PostgreSQL with DATABASE_URL), for a benchmark's server process.
 * `prepare` may write files into the data directory and returns extra configuration.
 */
export async function startBenchBlocks(prepare: (dataDir: string) => Record<string, unknown> = () => ({})): Promise<BenchBlocks> {
  const dataDir = mkdtempSync(join(tmpdir(), 'blocks-bench-'));
  const extra = prepare(dataDir);
  const config = loadConfig({
    configDir: new URL('../../config', import.meta.url).pathname,
    env: {
      BLOCKS_ENV: 'production',
      BLOCKS_DATA_DIR: dataDir,
      ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
    },
    overrides: {
      ...extra,
      // Production wants a configured key-encryption key; a throwaway one serves a benchmark.
      auth: { key_encryption_key: randomBytes(32).toString('base64') },
      // The load comes from one address: the limiter runs on every request (its cost is measured) but never refuses.
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
  return {
    blocks,
    dataDir,
    async close() {
      await blocks.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
