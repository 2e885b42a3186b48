import { spawn, type ChildProcess } from 'node:child_process';
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

/**
 * Runs the real CLI as a child process on ephemeral ports and resolves once it has printed the
 * URLs of every service it runs. Rejects if it exits first.
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
