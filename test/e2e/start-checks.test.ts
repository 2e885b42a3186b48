import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import { startBlocks } from '../../src/start.ts';
import { CONFIG_DIR, tempDir } from '../support/blocks.ts';

describe('start-up checks', () => {
  it('refuses to start a production service without the gateway when it cannot know the token issuer', async () => {
    const dir = tempDir('blocks-start-checks');
    try {
      const config = loadConfig({ configDir: CONFIG_DIR, env: { BLOCKS_ENV: 'production', BLOCKS_DATA_DIR: dir.path } });
      expect(config.auth.issuer).toBeUndefined();
      await expect(startBlocks({ config, roles: ['autonomous'], version: 'test', ephemeralPorts: true })).rejects.toThrow(/auth\.issuer/);
    } finally {
      dir.remove();
    }
  });
});
