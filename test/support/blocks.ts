import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import type { Config } from '../../src/platform/config/schema.ts';
import { createLogger, type Logger } from '../../src/platform/logger.ts';
import { startBlocks, type Role, type RunningBlocks } from '../../src/start.ts';
import { testRegistry } from './registry.ts';
import { copyPgliteTemplateSync } from './templates.ts';
import type { ModuleRegistry } from '../../src/platform/modules/registry.ts';

export const CONFIG_DIR = new URL('../../config', import.meta.url).pathname;

/**
 * Configuration as `blocks start` would load it in the test environment, plus the given variables.
 * Without `BLOCKS_DATA_DIR` it gets a data directory of its own (removed when the test process
 * exits): test files run in parallel, and two of them on the default `./data` would fight over
 * PGlite's lock and the generated key-encryption key. Without `DATABASE_URL` that directory holds a
 * copy of the run's migrated PGlite (`./templates.ts`), so a start finds the test registry's
 * migrations applied instead of creating and migrating a cluster; pass `BLOCKS_DATA_DIR` for a start
 * on an empty directory.
 */
export function testConfig(env: Record<string, string | undefined> = {}, overrides: Record<string, unknown> = {}): Config {
  const dataDir = env.BLOCKS_DATA_DIR ?? ownDataDir(env.DATABASE_URL === undefined);
  return loadConfig({
    configDir: CONFIG_DIR,
    env: { BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: dataDir, ...env },
    overrides,
    sections: testRegistry.configSections,
  });
}

const ownDataDirs: Array<{ remove(): void }> = [];
function ownDataDir(seeded: boolean): string {
  if (ownDataDirs.length === 0) process.once('exit', () => ownDataDirs.forEach((dir) => dir.remove()));
  const dir = tempDir('blocks-test-data');
  ownDataDirs.push(dir);
  // Where Blocks keeps its PGlite data (open-platform.ts).
  if (seeded) copyPgliteTemplateSync('migrated', join(dir.path, 'pglite'));
  return dir.path;
}

/** Log lines captured from a running Blocks, parsed. */
export interface CapturedLogs {
  readonly lines: Array<Record<string, unknown>>;
  readonly logger: Logger;
}

export function captureLogs(level = 'info'): CapturedLogs {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level,
    service: 'test',
    version: 'test',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { lines, logger };
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function startTestBlocks(options: {
  config: Config;
  roles?: readonly Role[];
  logger?: Logger;
  /** The modules to run: the built-in ones and the example module when absent. */
  registry?: ModuleRegistry;
}): Promise<RunningBlocks> {
  return startBlocks({
    config: options.config,
    roles: options.roles ?? ['gateway', 'autonomous', 'collaborative'],
    version: 'test',
    ephemeralPorts: true,
    registry: options.registry ?? testRegistry,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** Polls `read` until `accept` holds or the deadline passes; returns the last value read. */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    value = await read();
  }
  return value;
}
