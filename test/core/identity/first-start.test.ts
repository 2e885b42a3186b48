import { afterAll, describe, expect, it } from 'vitest';
import { spawnBlocks, type BlocksProcess } from '../../support/blocks-process.ts';
import { eventually, tempDir } from '../../support/blocks.ts';

const stop = async (blocks: BlocksProcess): Promise<void> => {
  blocks.child.kill('SIGTERM');
  await blocks.exited;
};

describe('blocks start on a new data directory', () => {
  const dir = tempDir('blocks-first-start');
  afterAll(() => dir.remove());

  it('prints the admin client id and secret once on standard output, never in the log, and not on the next start', async () => {
    const first = await spawnBlocks(['gateway'], { BLOCKS_DATA_DIR: dir.path });
    try {
      const lines = await eventually(
        async () => first.stderr.filter((line) => line.startsWith('stdout:')),
        (found) => found.some((line) => line.includes('client_secret')),
      );
      const secret = /client_secret\s+(bks_\S+)/.exec(lines.join('\n'))?.[1];
      const clientId = /client_id\s+(cl_[0-9a-f]{24})/.exec(lines.join('\n'))?.[1];
      expect(secret).toMatch(/^bks_[A-Za-z0-9_-]{43}$/);
      expect(first.logs).toContainEqual(expect.objectContaining({ client_id: clientId, tenant: 'default' }));
      expect(JSON.stringify(first.logs)).not.toContain(secret);
    } finally {
      await stop(first);
    }

    const second = await spawnBlocks(['gateway'], { BLOCKS_DATA_DIR: dir.path });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(second.stderr.join('\n')).not.toContain('client_secret');
    } finally {
      await stop(second);
    }
  }, 60_000);
});
