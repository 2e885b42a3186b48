import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Database, Listening, WakeUp } from '../../src/platform/db/port.ts';
import { InvalidChannelError } from '../../src/platform/db/wake-ups.ts';
import { DatabaseError, NestedDatabaseUseError, SQLSTATE, isUniqueViolation } from '../../src/platform/db/errors.ts';
import { KERNEL_MIGRATIONS_DIR, runMigrations } from '../../src/platform/db/migrate.ts';

const MIGRATIONS = [{ module: 'platform', dir: KERNEL_MIGRATIONS_DIR }];

const deferred = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The wake-up (LISTEN/NOTIFY) cases, by id, so an adapter can say which it cannot meet and why. */
export const wakeUpCases = {
  sameHandle: 'delivers a notification to a listener on the same handle, with its payload',
  otherHandle: 'delivers a notification sent through another handle on the same database (another replica)',
  commitOnly: 'delivers a notification sent in a transaction only once the transaction commits',
  rollback: 'delivers nothing for a transaction that rolls back',
  coalesce: 'runs a handler once per burst: notifications during a run collapse into one follow-up run',
  stop: 'stops delivering to a handler once stopped, while other handlers of the channel go on',
  failingHandler: 'goes on waking a handler that threw',
  channels: 'refuses a channel name that is not a plain identifier before anything reaches SQL',
  reconnect: 'reopens a listening connection the server killed and runs every handler once, marked missed',
} as const;

export type WakeUpCase = keyof typeof wakeUpCases;

export interface DbSuiteOptions {
  /** Wake-up cases the adapter cannot meet, each with the reason (printed when the suite runs). */
  readonly notApplicable?: Partial<Record<WakeUpCase, string>>;
  /** A second handle on the suite's database, as another replica opens it; the suite closes it. */
  readonly anotherHandle?: () => Promise<Database>;
  /** Kills the connections the database's listening handles hold, as a server restart would. */
  readonly killListeners?: () => Promise<void>;
}

/** Records every run of a wake-up handler. */
const wakeUps = (): { runs: WakeUp[]; payloads: () => string[]; handler: (wakeUp: WakeUp) => void } => {
  const runs: WakeUp[] = [];
  return { runs, payloads: () => runs.flatMap((run) => run.payloads), handler: (wakeUp) => void runs.push(wakeUp) };
};

const QUICK = { timeout: 5_000, interval: 10 } as const;

/**
 * The database port's contract, run against every adapter. `makeDb` opens a new connection (pool) to
 * one database that belongs to this suite; the suite closes what it opens. Tables are named per test.
 */
export function dbSuite(name: string, makeDb: () => Promise<Database>, options: DbSuiteOptions = {}): void {
  describe(`Database conformance: ${name}`, () => {
    let db: Database;
    let tables = 0;
    const table = (): string => `conformance_${++tables}`;

    beforeAll(async () => {
      db = await makeDb();
    });
    afterAll(async () => {
      await db.close();
    });

    describe('queries', () => {
      it('binds parameters as values, never as SQL', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (name text, n integer, ok boolean, f double precision)`);
        const hostile = `x'); DROP TABLE ${t}; --`;
        await db.query(`INSERT INTO ${t} VALUES ($1, $2, $3, $4)`, [hostile, 42, true, 1.5]);
        await db.query(`INSERT INTO ${t} VALUES ($1, $2, $3, $4)`, [null, null, null, null]);
        const { rows } = await db.query(`SELECT * FROM ${t} ORDER BY name NULLS LAST`);
        expect(rows).toEqual([
          { name: hostile, n: 42, ok: true, f: 1.5 },
          { name: null, n: null, ok: null, f: null },
        ]);
      });

      it('round-trips jsonb, passed as JSON text, with nesting, arrays and unicode', async () => {
        const value = { a: 1, nested: { list: [1, 'two', null, { three: true }] }, text: 'héllo "quoted" ✓' };
        const { rows } = await db.query<{ doc: unknown; list: unknown; scalar: unknown }>(
          'SELECT $1::jsonb AS doc, $2::jsonb AS list, $3::jsonb AS scalar',
          [JSON.stringify(value), JSON.stringify([1, 2, 3]), JSON.stringify('just a string')],
        );
        expect(rows[0]).toEqual({ doc: value, list: [1, 2, 3], scalar: 'just a string' });
      });

      it('returns timestamptz as a Date at the same instant, and dates as calendar strings', async () => {
        const at = new Date('2024-02-29T23:59:58.123Z');
        const { rows } = await db.query<{ at: Date; later: Date; day: string; span: string }>(
          `SELECT $1::timestamptz AS at, $1::timestamptz + interval '1 hour' AS later,
                  '2024-02-29'::date AS day, interval '1 day 02:00:00' AS span`,
          [at],
        );
        const row = rows[0];
        expect(row?.at).toBeInstanceOf(Date);
        expect(row?.at.toISOString()).toBe(at.toISOString());
        expect(row?.later.getTime()).toBe(at.getTime() + 3_600_000);
        expect(row?.day).toBe('2024-02-29');
        expect(row?.span).toBe('1 day 02:00:00');
      });

      it('round-trips arrays of text, integers, bigints and dates', async () => {
        const texts = ['plain', 'with "quotes"', 'with,comma', 'with {braces}', null, ''];
        const { rows } = await db.query<{ texts: unknown; ints: unknown; bigs: unknown; days: unknown }>(
          `SELECT $1::text[] AS texts, $2::int4[] AS ints, $3::int8[] AS bigs,
                  ARRAY['2024-01-01'::date, '2024-12-31'::date] AS days`,
          [texts, [1, -2, 3], [1, 9007199254740993n]],
        );
        expect(rows[0]).toEqual({ texts, ints: [1, -2, 3], bigs: [1, 9007199254740993n], days: ['2024-01-01', '2024-12-31'] });
      });

      it('returns int8 as a number while exact and as a bigint beyond 2^53, numeric as a string', async () => {
        const { rows } = await db.query<Record<string, unknown>>(
          `SELECT count(*) AS n, $1::int8 AS small, $2::int8 AS huge, -9007199254740993::int8 AS negative,
                  12345678901234567890.123::numeric AS exact`,
          [42, 9007199254740993n],
        );
        expect(rows[0]).toEqual({
          n: 1,
          small: 42,
          huge: 9007199254740993n,
          negative: -9007199254740993n,
          exact: '12345678901234567890.123',
        });
      });

      it('returns bytea as bytes and uuid as text', async () => {
        const id = '0190e9e6-1c3c-7abc-8def-0123456789ab';
        const { rows } = await db.query<{ bytes: Uint8Array; id: string }>('SELECT $1::bytea AS bytes, $2::uuid AS id', [
          Buffer.from([0, 1, 254, 255]),
          id,
        ]);
        expect(rows[0]?.bytes).toBeInstanceOf(Uint8Array);
        expect([...(rows[0]?.bytes ?? [])]).toEqual([0, 1, 254, 255]);
        expect(rows[0]?.id).toBe(id);
      });

      it('counts rows returned or changed', async () => {
        const t = table();
        expect((await db.query(`CREATE TABLE ${t} (x integer)`)).rowCount).toBe(0);
        expect((await db.query(`INSERT INTO ${t} VALUES (1), (2), (3)`)).rowCount).toBe(3);
        expect((await db.query(`UPDATE ${t} SET x = x + 10 WHERE x > 1`)).rowCount).toBe(2);
        expect((await db.query(`SELECT * FROM ${t}`)).rowCount).toBe(3);
        expect((await db.query(`DELETE FROM ${t} WHERE x = 99`)).rowCount).toBe(0);
      });

      it('runs one statement per query and whole scripts through exec', async () => {
        const t = table();
        const error = await db.query('SELECT 1; SELECT 2').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DatabaseError);
        await db.exec(`CREATE TABLE ${t} (x integer); INSERT INTO ${t} VALUES (1); INSERT INTO ${t} VALUES (2);`);
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 2 }]);
      });
    });

    describe('errors', () => {
      it('reports a unique violation the same way, outside and inside a transaction', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (id integer CONSTRAINT ${t}_pk PRIMARY KEY, label text NOT NULL)`);
        await db.query(`INSERT INTO ${t} VALUES (1, 'a')`);

        const outside = await db.query(`INSERT INTO ${t} VALUES (1, 'b')`).catch((e: unknown) => e);
        expect(isUniqueViolation(outside)).toBe(true);
        expect(outside).toMatchObject({ code: SQLSTATE.uniqueViolation, constraint: `${t}_pk`, table: t });

        const inside = await db.transaction((tx) => tx.query(`INSERT INTO ${t} VALUES (1, 'c')`)).catch((e: unknown) => e);
        expect(isUniqueViolation(inside)).toBe(true);
      });

      it('tells other violations apart by SQLSTATE', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (id integer PRIMARY KEY, label text NOT NULL)`);
        const notNull = await db.query(`INSERT INTO ${t} VALUES (1, NULL)`).catch((e: unknown) => e);
        expect(notNull).toBeInstanceOf(DatabaseError);
        expect(notNull).toMatchObject({ code: SQLSTATE.notNullViolation, column: 'label' });
        expect(isUniqueViolation(notNull)).toBe(false);
        const missing = await db.query('SELECT * FROM no_such_table_here').catch((e: unknown) => e);
        expect(missing).toMatchObject({ code: SQLSTATE.undefinedTable });
        expect(isUniqueViolation(new Error('23505'))).toBe(false);
      });
    });

    describe('transactions', () => {
      it('commits all writes together and returns what the work returned', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (x integer)`);
        const result = await db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} VALUES (1)`);
          await tx.query(`INSERT INTO ${t} VALUES (2)`);
          return (await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]?.n;
        });
        expect(result).toBe(2);
        expect((await db.query(`SELECT x FROM ${t} ORDER BY x`)).rows).toEqual([{ x: 1 }, { x: 2 }]);
      });

      it('rolls everything back when the work throws, and rethrows the same error', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (x integer)`);
        const boom = new Error('boom');
        const thrown = await db
          .transaction(async (tx) => {
            await tx.query(`INSERT INTO ${t} VALUES (1)`);
            await tx.exec(`INSERT INTO ${t} VALUES (2); INSERT INTO ${t} VALUES (3)`);
            throw boom;
          })
          .catch((e: unknown) => e);
        expect(thrown).toBe(boom);
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 0 }]);
      });

      it('refuses to commit after a statement failed inside it, even when the work caught the error', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (id integer PRIMARY KEY)`);
        const thrown = await db
          .transaction(async (tx) => {
            await tx.query(`INSERT INTO ${t} VALUES (1)`);
            await tx.query(`INSERT INTO ${t} VALUES (1)`).catch(() => 'ignored on purpose');
          })
          .catch((e: unknown) => e);
        expect(thrown).toMatchObject({ code: SQLSTATE.inFailedTransaction });
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 0 }]);
      });

      it('does not let a concurrent reader see uncommitted writes', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (x integer)`);
        const written = deferred();
        const rolledBack = db
          .transaction(async (tx) => {
            await tx.query(`INSERT INTO ${t} VALUES (1)`);
            written.resolve();
            await sleep(100);
            throw new Error('roll back');
          })
          .catch((e: unknown) => e);
        await written.promise;
        // PGlite makes this reader wait for the transaction; PostgreSQL answers from the last commit.
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 0 }]);
        expect(await rolledBack).toBeInstanceOf(Error);
      });

      it('serialises concurrent read-modify-write transactions that lock the row', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (id integer PRIMARY KEY, n integer NOT NULL)`);
        await db.query(`INSERT INTO ${t} VALUES (1, 0)`);
        await Promise.all(
          Array.from({ length: 12 }, () =>
            db.transaction(async (tx) => {
              const { rows } = await tx.query<{ n: number }>(`SELECT n FROM ${t} WHERE id = 1 FOR UPDATE`);
              await sleep(2);
              await tx.query(`UPDATE ${t} SET n = $1 WHERE id = 1`, [(rows[0]?.n ?? 0) + 1]);
            }),
          ),
        );
        expect((await db.query(`SELECT n FROM ${t}`)).rows).toEqual([{ n: 12 }]);
      });

      it('refuses direct use of the database inside its own transaction instead of hanging', async () => {
        const t = table();
        await db.query(`CREATE TABLE ${t} (x integer)`);
        const errors = await db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} VALUES (1)`);
          return Promise.all([
            db.query('SELECT 1').catch((e: unknown) => e),
            db.exec('SELECT 1').catch((e: unknown) => e),
            db.transaction(async () => 1).catch((e: unknown) => e),
          ]);
        });
        for (const error of errors) expect(error).toBeInstanceOf(NestedDatabaseUseError);
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 1 }]);
      });

      it('allows work started inside a transaction to use the database once it has ended', async () => {
        let background: Promise<unknown> = Promise.resolve();
        await db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          background = sleep(20).then(() => db.query<{ one: number }>('SELECT 1 AS one'));
        });
        expect(await background).toMatchObject({ rows: [{ one: 1 }] });
      });

      it('rejects a tx used after its transaction ended', async () => {
        let leaked: { query: (sql: string) => Promise<unknown> } | undefined;
        await db.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(leaked?.query('SELECT 1')).rejects.toThrow();
      });
    });

    describe('wake-ups', () => {
      let channels = 0;
      const channel = (): string => `conformance_wake_${++channels}`;
      const listening: Listening[] = [];
      const listen = async (on: Database, ch: string, handler: (wakeUp: WakeUp) => void | Promise<void>): Promise<Listening> => {
        const registration = await on.listen(ch, handler);
        listening.push(registration);
        return registration;
      };
      afterAll(async () => {
        await Promise.all(listening.map((registration) => registration.stop()));
      });

      const notApplicable = options.notApplicable ?? {};
      const test = (id: WakeUpCase, body: () => Promise<void>, timeout?: number): void => {
        const reason = notApplicable[id];
        if (reason !== undefined) {
          console.info(`[${name}] not applicable: ${wakeUpCases[id]}: ${reason}`);
          return;
        }
        it(wakeUpCases[id], body, timeout);
      };

      test('sameHandle', async () => {
        const ch = channel();
        const heard = wakeUps();
        await listen(db, ch, heard.handler);
        await db.notify(ch, 'hello ✓');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['hello ✓']), QUICK);
        expect(heard.runs[0]?.missed).toBe(false);
        await db.notify(ch);
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['hello ✓', '']), QUICK);
      });

      test('otherHandle', async () => {
        const open = options.anotherHandle;
        if (open === undefined) throw new Error('the otherHandle case needs options.anotherHandle');
        const other = await open();
        try {
          const ch = channel();
          const here = wakeUps();
          const there = wakeUps();
          await listen(db, ch, here.handler);
          await listen(other, ch, there.handler);
          await other.transaction((tx) => tx.notify(ch, 'from the other replica'));
          await db.notify(ch, 'from this one');
          await vi.waitFor(() => expect(here.payloads()).toEqual(['from the other replica', 'from this one']), QUICK);
          await vi.waitFor(() => expect(there.payloads()).toEqual(['from the other replica', 'from this one']), QUICK);
        } finally {
          await other.close();
        }
      });

      test('commitOnly', async () => {
        const ch = channel();
        const t = table();
        await db.query(`CREATE TABLE ${t} (x integer)`);
        const heard = wakeUps();
        await listen(db, ch, heard.handler);
        let seenInside: string[] = ['not checked'];
        await db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} VALUES (1)`);
          await tx.notify(ch, 'committed');
          await sleep(150);
          seenInside = heard.payloads();
        });
        expect(seenInside).toEqual([]);
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['committed']), QUICK);
        // Told after the commit, a handler reads the committed row.
        expect((await db.query(`SELECT count(*) AS n FROM ${t}`)).rows).toEqual([{ n: 1 }]);
      });

      test('rollback', async () => {
        const ch = channel();
        const heard = wakeUps();
        await listen(db, ch, heard.handler);
        const thrown = await db
          .transaction(async (tx) => {
            await tx.notify(ch, 'rolled back');
            throw new Error('roll back');
          })
          .catch((e: unknown) => e);
        expect(thrown).toBeInstanceOf(Error);
        // Notifications arrive in commit order: once the later one is here, the rolled-back one never will be.
        await db.notify(ch, 'after');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['after']), QUICK);
      });

      test('coalesce', async () => {
        const ch = channel();
        const slow = wakeUps();
        const counter = wakeUps();
        let release = (): void => {};
        const gate = new Promise<void>((resolve) => (release = resolve));
        await listen(db, ch, async (wakeUp) => {
          slow.handler(wakeUp);
          if (slow.runs.length === 1) await gate;
        });
        await listen(db, ch, counter.handler);
        await db.notify(ch, 'first');
        await vi.waitFor(() => expect(slow.runs).toHaveLength(1), QUICK);
        // Twenty commits while the first run is still going.
        const burst = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
        await Promise.all(burst.map((payload) => db.transaction((tx) => tx.notify(ch, payload))));
        await vi.waitFor(() => expect(new Set(counter.payloads())).toEqual(new Set(['first', ...burst])), QUICK);
        expect(slow.runs).toHaveLength(1);
        release();
        await vi.waitFor(() => expect(slow.runs).toHaveLength(2), QUICK);
        expect(new Set(slow.runs[1]?.payloads)).toEqual(new Set(burst));
        await sleep(100);
        expect(slow.runs).toHaveLength(2);
      });

      test('stop', async () => {
        const ch = channel();
        const stopped = wakeUps();
        const kept = wakeUps();
        const registration = await listen(db, ch, stopped.handler);
        await listen(db, ch, kept.handler);
        await db.notify(ch, 'before');
        await vi.waitFor(() => expect(stopped.payloads()).toEqual(['before']), QUICK);
        await registration.stop();
        await registration.stop();
        await db.notify(ch, 'after');
        await vi.waitFor(() => expect(kept.payloads()).toEqual(['before', 'after']), QUICK);
        await sleep(50);
        expect(stopped.payloads()).toEqual(['before']);

        // The last handler of a channel gone, the channel is unlistened; listening again works.
        const ch2 = channel();
        const again = wakeUps();
        await (await db.listen(ch2, () => undefined)).stop();
        await listen(db, ch2, again.handler);
        await db.notify(ch2, 'back');
        await vi.waitFor(() => expect(again.payloads()).toEqual(['back']), QUICK);
      });

      test('failingHandler', async () => {
        const ch = channel();
        const heard = wakeUps();
        await listen(db, ch, (wakeUp) => {
          heard.handler(wakeUp);
          throw new Error('handler failed');
        });
        await db.notify(ch, 'one');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['one']), QUICK);
        await db.notify(ch, 'two');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['one', 'two']), QUICK);
      });

      test('channels', async () => {
        const hostile = ['x; DROP TABLE events', 'Upper', '1starts_with_digit', '', 'has-dash', 'a'.repeat(64), '"quoted"'];
        for (const bad of hostile) {
          await expect(db.listen(bad, () => undefined)).rejects.toBeInstanceOf(InvalidChannelError);
          await expect(db.notify(bad)).rejects.toBeInstanceOf(InvalidChannelError);
          await expect(db.transaction((tx) => tx.notify(bad))).rejects.toBeInstanceOf(InvalidChannelError);
        }
        await expect(db.listen('a'.repeat(63), () => undefined).then((registration) => registration.stop())).resolves.toBeUndefined();
      });

      test('reconnect', async () => {
        const kill = options.killListeners;
        if (kill === undefined) throw new Error('the reconnect case needs options.killListeners');
        const ch = channel();
        const heard = wakeUps();
        await listen(db, ch, heard.handler);
        await db.notify(ch, 'before');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['before']), QUICK);
        await kill();
        // Every handler re-checks once, since whatever was notified while it was down is lost.
        await vi.waitFor(() => expect(heard.runs.filter((run) => run.missed)).toHaveLength(1), QUICK);
        // And the channel is listened to again.
        await db.notify(ch, 'after');
        await vi.waitFor(() => expect(heard.payloads()).toEqual(['before', 'after']), QUICK);
      }, 15_000);
    });

    describe('migrations', () => {
      it('applies the migrations once; a second run applies nothing', async () => {
        const first = await runMigrations(db, MIGRATIONS);
        expect(first.map((m) => m.version)).toContain(1);
        expect(first.map((m) => m.version)).toEqual([...first.map((m) => m.version)].sort((a, b) => a - b));
        expect(await runMigrations(db, MIGRATIONS)).toEqual([]);
        const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
        expect(rows.map((r) => r.version)).toEqual(first.map((m) => m.version));
        const tables = await db.query<{ name: string }>(
          `SELECT table_name AS name FROM information_schema.tables WHERE table_name IN ('events', 'inbox') ORDER BY 1`,
        );
        expect(tables.rows).toEqual([{ name: 'events' }, { name: 'inbox' }]);
      });
    });

    describe('lifecycle', () => {
      it('pings with a round-trip time and reports pool figures', async () => {
        const ms = await db.ping();
        expect(ms).toBeGreaterThanOrEqual(0);
        const stats = db.poolStats();
        expect(stats.total).toBeGreaterThanOrEqual(stats.idle);
        expect(stats.waiting).toBeGreaterThanOrEqual(0);
      });

      it('rejects queries after close, and closing twice is harmless', async () => {
        const other = await makeDb();
        await other.query('SELECT 1');
        await other.close();
        await other.close();
        await expect(other.query('SELECT 1')).rejects.toThrow();
        await expect(other.ping()).rejects.toThrow();
      });
    });
  });
}
