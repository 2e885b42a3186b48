import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** A `blocks start …` child process, its URLs and what it logged. */
export interface BlocksProcess {
  readonly child: ChildProcess;
  readonly urls: Record<string, string>;
  /** JSON log lines from stdout, parsed, as they arrive. */
  readonly logs: Array<Record<string, unknown>>;
  readonly stderr: string[];
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
}

const madeDirs: string[] = [];
/** A data directory of the child's own, removed when the test process exits: `./data` is shared by every test file. */
function ownDataDir(): string {
  if (madeDirs.length === 0) process.once('exit', () => madeDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const dir = mkdtempSync(join(tmpdir(), 'blocks-process-'));
  madeDirs.push(dir);
  return dir;
}

/**
 * Runs the real CLI as a child process on ephemeral ports and resolves once it has printed the
 * URLs of every service it runs. Rejects if it exits first. Without `BLOCKS_DATA_DIR` it gets a
 * data directory of its own.
 */
export async function spawnBlocks(roles: readonly string[], env: Record<string, string>): Promise<BlocksProcess> {
  const child = spawn(process.execPath, [CLI, 'start', ...roles], {
    env: {
      PATH: process.env.PATH,
      BLOCKS_ENV: 'test',
      LOG_LEVEL: 'info',
      BLOCKS_GATEWAY_PORT: '0',
      BLOCKS_AUTONOMOUS_PORT: '0',
      BLOCKS_COLLABORATIVE_PORT: '0',
      BLOCKS_DATA_DIR: env.BLOCKS_DATA_DIR ?? ownDataDir(),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const expected = roles.length > 0 ? roles : ['gateway', 'autonomous', 'collaborative'];
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const urls: Record<string, string> = {};
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      stderr.push(`stdout: ${line}`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      stderr.push(line);
      const match = /^\s+(gateway|autonomous|collaborative)\s+(http:\/\/\S+)/.exec(line);
      if (match) urls[match[1] as string] = match[2] as string;
      if (expected.every((role) => urls[role])) resolve();
    });
    void exited.then((code) => reject(new Error(`blocks ${roles.join(' ')} exited with ${code}:\n${stderr.join('\n')}`)));
  });
  return { child, urls, logs, stderr, exited };
}

/** The admin OAuth client a first start prints once on standard output. */
export interface FirstStartClient {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** Waits for the first-start client id and secret on the process's standard output, as an operator reads them. */
export async function firstStartClient(blocks: BlocksProcess, timeoutMs = 10_000): Promise<FirstStartClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = blocks.stderr.filter((line) => line.startsWith('stdout:')).join('\n');
    const clientId = /client_id\s+(cl_[0-9a-f]+)/.exec(text)?.[1];
    const clientSecret = /client_secret\s+(bks_\S+)/.exec(text)?.[1];
    if (clientId !== undefined && clientSecret !== undefined) return { clientId, clientSecret };
    if (Date.now() > deadline) throw new Error(`no first-start client on standard output:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** An access token from `POST /oauth/token` (client_credentials, HTTP Basic as the first-start hint shows). */
export async function clientToken(gateway: string, client: FirstStartClient, scope?: string): Promise<string> {
  const response = await fetch(`${gateway}/oauth/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) }).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  if (response.status !== 200 || body.access_token === undefined) {
    throw new Error(`POST /oauth/token answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

/** Creates an API key through the identity admin API with an admin token; resolves with the key. */
export async function createApiKey(gateway: string, adminToken: string, scopes: readonly string[]): Promise<string> {
  const response = await fetch(`${gateway}/api/v1/identity/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'test', scopes }),
  });
  const body = (await response.json()) as { key?: string };
  if (response.status !== 201 || body.key === undefined) {
    throw new Error(`POST /api/v1/identity/api-keys answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.key;
}

/** A key holding `scopes`, made the way an operator does after a first start: the printed client, a token, then the admin API. */
export async function firstStartKey(blocks: BlocksProcess, scopes: readonly string[]): Promise<string> {
  const gateway = blocks.urls.gateway;
  if (gateway === undefined) throw new Error('firstStartKey needs a process running the gateway');
  return createApiKey(gateway, await clientToken(gateway, await firstStartClient(blocks)), scopes);
}
