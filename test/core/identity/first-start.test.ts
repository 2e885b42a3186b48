import { afterAll, describe, expect, it } from 'vitest';
import { clientToken, firstStartClient, spawnBlocks, type BlocksProcess } from '../../support/blocks-process.ts';
import { tempDir } from '../../support/blocks.ts';

const stop = async (blocks: BlocksProcess): Promise<void> => {
  blocks.child.kill('SIGTERM');
  await blocks.exited;
};

const listKeys = (gateway: string, token: string) =>
  fetch(`${gateway}/api/v1/identity/api-keys`, { headers: { authorization: `Bearer ${token}` } });

describe('blocks start on a new data directory', () => {
  const dir = tempDir('blocks-first-start');
  afterAll(() => dir.remove());

  it('prints the admin client id and secret once on standard output, never in the log, and not on the next start; the secret gets an admin token', async () => {
    const first = await spawnBlocks(['gateway'], { BLOCKS_DATA_DIR: dir.path });
    let client: Awaited<ReturnType<typeof firstStartClient>>;
    try {
      client = await firstStartClient(first);
      expect(client.clientSecret).toMatch(/^bks_[A-Za-z0-9_-]{43}$/);
      expect(client.clientId).toMatch(/^cl_[0-9a-f]{24}$/);
      expect(first.logs).toContainEqual(expect.objectContaining({ client_id: client.clientId, tenant: 'default' }));
      expect(JSON.stringify(first.logs)).not.toContain(client.clientSecret);
      // Nothing but health is open to an anonymous caller; the printed client is the way in.
      expect((await fetch(`${first.urls.gateway as string}/api/v1/identity/api-keys`)).status).toBe(401);
      expect((await listKeys(first.urls.gateway as string, await clientToken(first.urls.gateway as string, client))).status).toBe(200);
    } finally {
      await stop(first);
    }

    const second = await spawnBlocks(['gateway'], { BLOCKS_DATA_DIR: dir.path });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(second.stderr.join('\n')).not.toContain('client_secret');
      // The secret printed the first time still works: it is stored (hashed), only never shown again.
      expect((await listKeys(second.urls.gateway as string, await clientToken(second.urls.gateway as string, client))).status).toBe(200);
    } finally {
      await stop(second);
    }
  }, 120_000);
});
