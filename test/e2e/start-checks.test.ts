import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import { startBlocks } from '../../src/start.ts';
import { spawnBlocks } from '../support/blocks-process.ts';
import { CONFIG_DIR, tempDir } from '../support/blocks.ts';
import { testRegistry } from '../support/registry.ts';

describe('start-up checks', () => {
  it('refuses to start a production service without the gateway when it cannot know the token issuer', async () => {
    const dir = tempDir('blocks-start-checks');
    try {
      const config = loadConfig({
        configDir: CONFIG_DIR,
        env: { BLOCKS_ENV: 'production', BLOCKS_DATA_DIR: dir.path },
        sections: testRegistry.configSections,
      });
      expect(config.auth.issuer).toBeUndefined();
      await expect(startBlocks({ config, roles: ['autonomous'], version: 'test', ephemeralPorts: true })).rejects.toThrow(/auth\.issuer/);
    } finally {
      dir.remove();
    }
  });
});

describe('the address Blocks listens on', () => {
  const listening = async (env: Record<string, string>): Promise<string> => {
    const dir = tempDir('blocks-bind');
    try {
      const config = loadConfig({
        configDir: CONFIG_DIR,
        env: { BLOCKS_DATA_DIR: dir.path, ...env },
        sections: testRegistry.configSections,
      });
      const running = await startBlocks({ config, roles: ['gateway'], version: 'test', ephemeralPorts: true });
      try {
        return (running.apps.gateway?.server.address() as AddressInfo).address;
      } finally {
        await running.close();
      }
    } finally {
      dir.remove();
    }
  };

  it('is loopback only in development', async () => {
    expect(await listening({ BLOCKS_ENV: 'development' })).toBe('127.0.0.1');
  }, 120_000);

  it('is every interface in the production profile', async () => {
    expect(await listening({ BLOCKS_ENV: 'production', BLOCKS_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') })).toBe('0.0.0.0');
  }, 120_000);

  it('is named in the banner of a development start, beside the secret it prints', async () => {
    const blocks = await spawnBlocks(['gateway'], { BLOCKS_ENV: 'development' });
    try {
      const banner = blocks.stderr.join('\n');
      expect(banner).toMatch(/Listening on 127\.0\.0\.1 only \(loopback: this machine alone/);
      expect(banner).not.toMatch(/every interface/);
    } finally {
      blocks.child.kill('SIGTERM');
      await blocks.exited;
    }
  }, 120_000);
});
