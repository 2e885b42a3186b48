import { describe, it, expect, afterEach } from 'vitest';
import { request } from 'node:http';
import { firstStartKey, spawnBlocks, type BlocksProcess } from '../support/blocks-process.ts';
import { eventually, tempDir } from '../support/blocks.ts';
import { createPgliteDatabase } from '../../src/platform/db/pglite.ts';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const body = (n: number) => JSON.stringify({ task_type: 'classification', complexity: 'low', context: { input: `ticket ${n}` } });
const route = (url: string, n: number, key: string) =>
  fetch(`${url}/api/v1/autonomous/ai/route`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-correlation-id': `life-${n}`, 'x-api-key': key },
    body: body(n),
  });

const decisionsOnMetrics = async (url: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^blocks_ai_model_decisions\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
};

// Each test runs the real CLI (a new Node process, migrations on a new PGlite): far slower than a unit test.
describe('blocks start on the embedded defaults', { timeout: 120_000 }, () => {
  const running: BlocksProcess[] = [];
  const dirs: Array<{ remove(): void }> = [];
  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
    for (const d of dirs.splice(0)) d.remove();
  });

  it('applies migrations with `blocks migrate`, once', async () => {
    const dir = tempDir('blocks-migrate');
    dirs.push(dir);
    const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
    const run = () =>
      promisify(execFile)(process.execPath, [cli, 'migrate'], {
        env: { PATH: process.env.PATH, BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: dir.path },
      });
    expect((await run()).stderr).toMatch(/^applied .*events.*model_usage/);
    expect((await run()).stderr).toMatch(/database is up to date/);
  });

  it('rotates the token signing key with `blocks keys rotate`, keeping the old one published until its tokens expire', async () => {
    const dir = tempDir('blocks-keys');
    dirs.push(dir);
    const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
    const run = (...args: string[]) =>
      promisify(execFile)(process.execPath, [cli, ...args], {
        env: { PATH: process.env.PATH, BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: dir.path },
      });
    const first = (await run('keys', 'rotate')).stderr;
    expect(first).toMatch(/^signing key \S+ is current\n$/);
    const firstKid = /signing key (\S+)/.exec(first)?.[1];
    const second = (await run('keys', 'rotate')).stderr;
    expect(second).toContain(`; ${firstKid as string} is retired and published until its tokens have expired`);
    expect(second).not.toContain(`signing key ${firstKid as string} is current`);
    await expect(run('keys', 'spin')).rejects.toMatchObject({ code: 2 });
  });

  it('refuses to start with a configuration error naming the key', async () => {
    await expect(spawnBlocks([], { BLOCKS__outbox__batch_size: '0' })).rejects.toThrow(/outbox\.batch_size: must be >= 1/);
  });

  it('keeps its data, API keys included, across a stop and a start', async () => {
    const dir = tempDir('blocks-restart');
    dirs.push(dir);
    const first = await spawnBlocks([], { BLOCKS_DATA_DIR: dir.path });
    running.push(first);
    // As an operator would: the client printed at first start, a token, then a key for the AI routes.
    const key = await firstStartKey(first, ['ai:route']);
    expect((await route(first.urls.gateway as string, 0, 'bk_not-a-key')).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await route(first.urls.gateway as string, i, key)).status).toBe(200);
    expect(
      await eventually(
        () => decisionsOnMetrics(first.urls.gateway as string),
        (n) => n === 3,
      ),
    ).toBe(3);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await spawnBlocks([], { BLOCKS_DATA_DIR: dir.path });
    running.push(second);
    expect(second.stderr.join('\n')).not.toContain('client_secret');
    expect(await decisionsOnMetrics(second.urls.gateway as string)).toBe(3);
    // The key made before the stop still opens the autonomous service's own port.
    expect((await route(second.urls.autonomous as string, 3, key)).status).toBe(200);
    expect(
      await eventually(
        () => decisionsOnMetrics(second.urls.gateway as string),
        (n) => n === 4,
      ),
    ).toBe(4);
  });

  it('finishes a request in flight on SIGTERM, flushes the outbox and exits 0', async () => {
    const dir = tempDir('blocks-sigterm');
    dirs.push(dir);
    const blocks = await spawnBlocks([], { BLOCKS_DATA_DIR: dir.path });
    running.push(blocks);
    const key = await firstStartKey(blocks, ['ai:route']);
    const url = new URL(`${blocks.urls.gateway as string}/api/v1/autonomous/ai/route`);
    const payload = body(7);
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            'x-correlation-id': 'in-flight',
            'x-api-key': key,
          },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      // Half the body now, the rest after SIGTERM: the request is in flight while shutdown starts.
      req.write(payload.slice(0, 10));
      setTimeout(() => {
        blocks.child.kill('SIGTERM');
        setTimeout(() => req.end(payload.slice(10)), 300);
      }, 200);
    });
    const { status, text } = await answer;
    expect(status).toBe(200);
    expect(JSON.parse(text)).toHaveProperty('selected_model');
    expect(await blocks.exited).toBe(0);

    const db = await createPgliteDatabase({ dataDir: join(dir.path, 'pglite') });
    try {
      const { rows } = await db.query<{ published_at: unknown }>("SELECT published_at FROM events WHERE correlation_id = 'in-flight'");
      expect(rows).toHaveLength(1);
      expect(rows[0]?.published_at).not.toBeNull();
    } finally {
      await db.close();
    }
  });
});
