import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import { createLogger } from '../../src/platform/logger.ts';
import { startBlocks, type RunningBlocks } from '../../src/start.ts';
import { FIRST_TENANT } from '../../src/core/identity/index.ts';
import { createRegistry } from '../../src/modules.ts';

export interface BenchBlocks {
  readonly blocks: RunningBlocks;
  /** A fresh directory of this run, removed by `close`; or BENCH_DATA_DIR, kept. */
  readonly dataDir: string;
  /** An API key of the first tenant holding the scopes asked for, for the load generator (`x-api-key`). */
  readonly apiKey: string;
  close(): Promise<void>;
}

export interface BenchBlocksOptions {
  /** What the load generator's key may do: the scopes of the routes it loads, nothing more. */
  readonly scopes: readonly string[];
  /** May write files into the data directory; returns extra configuration. */
  readonly prepare?: (dataDir: string) => Record<string, unknown>;
}

/**
 * All three services in this process as production runs them, on the embedded defaults in a
 * fresh data directory (BENCH_DATA_DIR names one to reuse; PostgreSQL with DATABASE_URL), for a
 * benchmark's server process.
 * Every request needs a credential, so a real API key is made through identity, as the admin API
 * would: the load pays the same access decision (key lookup, scope check, rate limit) any caller does.
 */
export async function startBenchBlocks(options: BenchBlocksOptions): Promise<BenchBlocks> {
  // BENCH_DATA_DIR starts on what an earlier start (or a prefill) left there, and keeps it.
  const kept = process.env.BENCH_DATA_DIR;
  const dataDir = kept ?? mkdtempSync(join(tmpdir(), 'blocks-bench-'));
  const extra = options.prepare?.(dataDir) ?? {};
  const config = loadConfig({
    sections: createRegistry().configSections,
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
  const close = async (): Promise<void> => {
    await blocks.close();
    if (kept === undefined) rmSync(dataDir, { recursive: true, force: true });
  };
  let apiKey: string;
  try {
    const created = await blocks.identity.apiKeys.create(
      FIRST_TENANT,
      { name: 'bench load', scopes: [...options.scopes], expiresAt: null },
      { correlationId: 'bench' },
    );
    apiKey = created.key;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    blocks,
    dataDir,
    apiKey,
    close,
  };
}
