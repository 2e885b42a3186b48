import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Database } from '../../../src/platform/db/port.ts';
import { createPgliteDatabase } from '../../../src/platform/db/pglite.ts';
import { createPostgresDatabase } from '../../../src/platform/db/postgres.ts';
import { createMemoryBus } from '../../../src/platform/bus/memory.ts';
import { createOutboxRelay } from '../../../src/platform/events/relay.ts';
import { runMigrations } from '../../../src/platform/db/migrate.ts';
import { probeService } from '../../support/services.ts';
import { createTestDatabase } from '../../support/postgres.ts';
import { createRecordingBus } from './recording-bus.ts';
import { MIGRATIONS } from '../../support/databases.ts';
import { createPgliteDirs, type PgliteDirs } from '../../support/pglite-dirs.ts';

const postgres = await probeService('postgres');
const WRITER = join(import.meta.dirname, 'fixtures/outbox-writer.ts');

interface Writer {
  readonly child: ChildProcess;
  /** Resolves with the first stdout line (parsed) that has `field`. */
  line(field: string): Promise<Record<string, unknown>>;
  kill(): Promise<void>;
}

const children = new Set<ChildProcess>();

function startWriter(args: Record<string, unknown>): Writer {
  const child = spawn(process.execPath, [WRITER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    lines.push(JSON.parse(text) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    child,
    async line(field) {
      for (;;) {
        const found = lines.find((line) => field in line);
        if (found !== undefined) return found;
        if (child.exitCode !== null) throw new Error(`writer exited with ${child.exitCode}: ${stderr}`);
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited]);
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      children.delete(child);
    },
  };
}

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** A database a child process and then the test open in turn; `dispose` removes it. */
interface Target {
  readonly args: Record<string, unknown>;
  open(): Promise<Database>;
  dispose(): Promise<void>;
}

function crashTests(makeTarget: () => Promise<Target>): void {
  let target: Target;
  beforeEach(async () => {
    target = await makeTarget();
  });
  afterEach(async () => {
    await target.dispose();
  });

  it('relays the events of a producer that was killed before relaying them', async () => {
    const writer = startWriter({ ...target.args, count: 5, mode: 'append' });
    const { appended } = (await writer.line('appended')) as { appended: string[] };
    await writer.kill();
    expect(writer.child.signalCode).toBe('SIGKILL');

    const db = await target.open();
    const bus = createRecordingBus(createMemoryBus());
    try {
      const relay = createOutboxRelay({ db, bus });
      expect(await relay.backlog()).toBe(5);
      expect(await relay.flush()).toEqual({ published: 5, failed: 0 });
      expect(bus.published.map((m) => m.id)).toEqual(appended);
      expect((await db.query('SELECT count(*) AS n FROM writer_orders')).rows).toEqual([{ n: 5 }]);
    } finally {
      await bus.close();
      await db.close();
    }
  });

  it('takes over the rows of a relay that died mid-publish once its lease runs out, exactly once', async () => {
    const writer = startWriter({ ...target.args, count: 4, mode: 'claim', leaseMs: 1_500 });
    const { appended } = (await writer.line('appended')) as { appended: string[] };
    await writer.line('publishing');
    await writer.kill();

    const db = await target.open();
    const bus = createRecordingBus(createMemoryBus());
    try {
      const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM events WHERE locked_by IS NOT NULL');
      expect(rows).toEqual([{ n: 4 }]);
      // The dead relay leased its rows: the lease is what this test is about, on PGlite too.
      const relay = createOutboxRelay({ db, bus, exclusive: false });
      await vi.waitFor(
        async () => {
          await relay.flush();
          expect(await relay.backlog()).toBe(0);
        },
        { timeout: 10_000, interval: 200 },
      );
      expect(bus.published.map((m) => m.id)).toEqual(appended);
    } finally {
      await bus.close();
      await db.close();
    }
  });
}

describe('outbox across a process crash', () => {
  describe('on PGlite (data directory)', () => {
    let dirs: PgliteDirs;
    beforeAll(async () => {
      dirs = await createPgliteDirs('blocks-outbox', (db) => runMigrations(db, MIGRATIONS).then(() => undefined));
    });
    afterAll(async () => {
      await dirs.remove();
    });
    crashTests(async () => {
      const dataDir = await dirs.fresh();
      return {
        args: { target: { kind: 'pglite', dataDir } },
        open: () => createPgliteDatabase({ dataDir }),
        dispose: () => rm(dataDir, { recursive: true, force: true }),
      };
    });
  });

  describe.skipIf(!postgres.ok)('on PostgreSQL', () => {
    crashTests(async () => {
      const testDb = await createTestDatabase();
      return {
        args: { target: { kind: 'postgres', url: testDb.url } },
        open: () => createPostgresDatabase({ url: testDb.url, poolMax: 2 }),
        dispose: () => testDb.drop(),
      };
    });
  });
});
