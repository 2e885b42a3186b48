import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { MemoryReport, ProbeAnswer, ProbeRequest } from './memory-probe.ts';

export interface MemorySample {
  /** Milliseconds since the sampler started. */
  readonly at: number;
  /** VmRSS of the process, bytes. */
  readonly rss: number;
}

export interface MemorySampler {
  /** RSS now (read at once, not waiting for the next sample). */
  rssNow(): number;
  /** Milliseconds since the sampler started. */
  now(): number;
  /** The highest RSS sampled in [from, to] (ms since start), with where the memory was at the highest sample that has a breakdown. */
  peak(from: number, to?: number): { rss: number; breakdown: MemoryReport | undefined };
  /** Asks the child's memory probe where its memory is (undefined if it has no probe or did not answer in 5 s). */
  breakdown(): Promise<MemoryReport | undefined>;
  /** Writes a heap snapshot of the child's main thread into `dir`; resolves with the file. */
  heapSnapshot(dir: string): Promise<string | undefined>;
  stop(): void;
}

/** VmRSS of a process in bytes, from /proc (0 once it is gone). */
export function readRss(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0; // The process has exited: it holds no memory.
  }
}

/**
 * Samples a child's RSS every `intervalMs` from /proc, and where its memory is (heap, external,
 * worker threads) every `breakdownEvery` samples from the memory probe preloaded into it
 * (./memory-probe.ts, over the IPC channel), so the peak can be explained.
 */
export function sampleMemory(child: ChildProcess, options: { intervalMs?: number; breakdownEvery?: number } = {}): MemorySampler {
  const pid = child.pid;
  if (pid === undefined) throw new Error('the child has no pid');
  const started = performance.now();
  const now = (): number => performance.now() - started;
  const samples: MemorySample[] = [];
  const breakdowns: Array<{ at: number; report: MemoryReport }> = [];
  const waiting: Array<(answer: ProbeAnswer) => void> = [];
  child.on('message', (answer: ProbeAnswer) => waiting.shift()?.(answer));

  const ask = <T extends ProbeAnswer['type']>(request: ProbeRequest & { type: T }, ms: number) =>
    new Promise<Extract<ProbeAnswer, { type: T }> | undefined>((resolve) => {
      if (!child.connected) {
        resolve(undefined);
        return;
      }
      const timer = setTimeout(() => resolve(undefined), ms);
      waiting.push((answer) => {
        clearTimeout(timer);
        resolve(answer.type === request.type ? (answer as Extract<ProbeAnswer, { type: T }>) : undefined);
      });
      child.send(request);
    });
  const breakdown = async (): Promise<MemoryReport | undefined> => {
    const at = now();
    const answer = await ask({ type: 'memory' }, 5_000);
    if (answer === undefined) return undefined;
    const { type: _type, ...report } = answer;
    breakdowns.push({ at, report });
    return report;
  };

  let tick = 0;
  const every = options.breakdownEvery ?? 5;
  const timer = setInterval(() => {
    samples.push({ at: now(), rss: readRss(pid) });
    if (tick++ % every === 0) void breakdown();
  }, options.intervalMs ?? 1_000);
  samples.push({ at: 0, rss: readRss(pid) });

  return {
    rssNow: () => readRss(pid),
    now,
    peak(from, to = Infinity) {
      const inWindow = samples.filter((s) => s.at >= from && s.at <= to);
      const rss = Math.max(0, ...inWindow.map((s) => s.rss));
      const described = breakdowns.filter((b) => b.at >= from && b.at <= to).sort((a, b) => b.report.rss - a.report.rss)[0];
      return { rss, breakdown: described?.report };
    },
    breakdown,
    async heapSnapshot(dir) {
      return (await ask({ type: 'heap-snapshot', dir }, 120_000))?.file;
    },
    stop: () => clearInterval(timer),
  };
}

export const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0);

/**
 * Where a process's resident memory is by kind of mapping (/proc/<pid>/smaps): V8 heap pages
 * (256 kB anonymous mappings, every isolate's), WASM memories (anonymous mappings of 100 MB and
 * more), malloc's heap and arenas (other anonymous mappings of 1 MB and more), the rest (code,
 * stacks, smaller mappings).
 */
export function describeMappings(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return 'no smaps';
  }
  const kinds = { 'V8 pages': 0, WASM: 0, malloc: 0, other: 0 };
  let size = 0;
  let name = '';
  for (const line of text.split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (range !== null) {
      size = (parseInt(range[2] as string, 16) - parseInt(range[1] as string, 16)) / 1024;
      name = range[3] ?? '';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss === null) continue;
    const kb = Number(rss[1]);
    if (name === '' && size === 256) kinds['V8 pages'] += kb;
    else if (name === '' && size >= 102_400) kinds.WASM += kb;
    else if (name === '[heap]' || (name === '' && size >= 1024)) kinds.malloc += kb;
    else kinds.other += kb;
  }
  return `resident by mapping: ${Object.entries(kinds)
    .map(([kind, kb]) => `${kind} ${mb(kb * 1024)}`)
    .join(', ')}`;
}

/** One line saying where a process's memory is: main heap, external, array buffers, and each worker's heap and external. */
export function describeMemory(report: MemoryReport | undefined): string {
  if (report === undefined) return 'no breakdown';
  const workers = report.workers
    .map((w, i) => `worker ${i + 1} heap ${mb(w.heapUsed)}/${mb(w.heapTotal)} + external ${mb(w.external)}`)
    .join(', ');
  const accounted = report.heapTotal + report.external + report.workers.reduce((sum, w) => sum + w.heapTotal + w.external, 0);
  return (
    `rss ${mb(report.rss)} MB = main heap ${mb(report.heapUsed)}/${mb(report.heapTotal)} + external ${mb(report.external)} ` +
    `(array buffers ${mb(report.arrayBuffers)})${workers === '' ? '' : `, ${workers}`}, rest ${mb(report.rss - accounted)} (code, native, freed but kept)`
  );
}
