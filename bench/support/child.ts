import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface BenchChild<T> {
  readonly child: ChildProcess;
  /** The JSON of the first line the script prints on stdout (its URLs and the like). */
  readonly ready: Promise<T>;
}

export interface BenchChildOptions {
  /** Added to this process's environment. */
  readonly env?: Record<string, string>;
  /** Node options before the script (`--import`, `--heapsnapshot-near-heap-limit=…`). */
  readonly execArgv?: readonly string[];
  /** Opens an IPC channel to the child (`process.send` there). */
  readonly ipc?: boolean;
}

/**
 * Starts a bench server script (a path relative to bench/) in a process of its own, on this Node;
 * `ready` rejects if it exits before printing its first line. Its stderr goes to ours.
 */
export function startBenchChild<T>(script: string, options: BenchChildOptions = {}): BenchChild<T> {
  const child = spawn(process.execPath, [...(options.execArgv ?? []), new URL(`../${script}`, import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit', ...(options.ipc === true ? (['ipc'] as const) : [])],
    env: { ...process.env, ...options.env },
  });
  const ready = new Promise<T>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => resolve(JSON.parse(line) as T));
  });
  return { child, ready };
}

/** Sends SIGTERM and waits for the child to exit. */
export async function stopBenchChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
