// Preloaded into a bench server process (`node --import <this file> server.ts`, started with an IPC
// channel, see startBenchChild): answers `{ type: 'memory' }` with where its memory is, the main
// thread's process.memoryUsage() and each worker thread's heap statistics (PGlite runs in a worker,
// and its WASM memory counts as that worker's external memory); answers `{ type: 'heap-snapshot' }`
// by writing a heap snapshot of the main thread into the directory it names
// and naming the file.
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { Worker } from 'node:worker_threads';

/** Bytes, as a bench server reports them. */
export interface MemoryReport {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** Per live worker thread: its V8 heap in use and in total, and its external memory (WASM, buffers). */
  readonly workers: ReadonlyArray<{ readonly heapUsed: number; readonly heapTotal: number; readonly external: number }>;
}

export type ProbeRequest = { readonly type: 'memory' } | { readonly type: 'heap-snapshot'; readonly dir: string };
export type ProbeAnswer = ({ readonly type: 'memory' } & MemoryReport) | { readonly type: 'heap-snapshot'; readonly file: string };

const workers = new Set<Worker>();
process.on('worker', (worker: Worker) => {
  workers.add(worker);
  worker.once('exit', () => workers.delete(worker));
});

const report = async (): Promise<MemoryReport> => {
  const main = process.memoryUsage();
  const stats = await Promise.all(
    [...workers].map(async (worker) => {
      try {
        const heap = await worker.getHeapStatistics();
        return [{ heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size, external: heap.external_memory }];
      } catch {
        // A worker that ended between the listing and the question (a short-lived one at start) has no heap to report.
        return [];
      }
    }),
  );
  return { ...main, workers: stats.flat() };
};

if (process.send !== undefined) {
  const send = process.send.bind(process);
  process.on('message', (request: ProbeRequest) => {
    if (request.type === 'memory') void report().then((memory) => send({ type: 'memory', ...memory } satisfies ProbeAnswer));
    else
      send({
        type: 'heap-snapshot',
        file: writeHeapSnapshot(join(request.dir, `server-${process.pid}-${Date.now()}.heapsnapshot`)),
      } satisfies ProbeAnswer);
  });
  // The probe must not keep the server alive on its own.
  process.channel?.unref();
}
