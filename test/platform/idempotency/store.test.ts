import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/platform/clock.ts';
import { createIdempotencyStore, type IdempotencyScope } from '../../../src/platform/idempotency/index.ts';
import { forEachDatabase } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';

const postgres = await probeService('postgres');

/** A clock the test moves by hand. */
const manualClock = (start = Date.parse('2026-01-01T00:00:00Z')): Clock & { advance(ms: number): void } => {
  let now = start;
  return { now: () => now, sleep: async () => undefined, advance: (ms) => void (now += ms) };
};

const WINDOW = 24 * 3600_000;
let n = 0;
const freshScope = (): IdempotencyScope => ({ tenant: 't1', principal: 'key-1', key: `k-${process.pid}-${++n}` });
const answer = { status: 201, headers: { 'content-type': 'application/json', location: '/x/1' }, body: Buffer.from('{"id":1}') };

describe('idempotency store', () => {
  forEachDatabase(postgres, (fixture) => {
    const storeOn = (clock = manualClock()) => ({ clock, store: createIdempotencyStore({ db: fixture.db(), clock, windowMs: WINDOW }) });

    it('lets the first request with a key run, and replays its stored answer, byte for byte, to the next', async () => {
      const { store } = storeOn();
      const scope = freshScope();
      expect(await store.begin(scope, 'fp')).toEqual({ kind: 'owned' });
      expect(await store.begin(scope, 'fp')).toEqual({ kind: 'in_flight' });
      await store.complete(scope, answer);
      const replay = await store.begin(scope, 'fp');
      expect(replay.kind).toBe('replay');
      if (replay.kind !== 'replay') return;
      expect(replay.answer.status).toBe(201);
      expect(replay.answer.headers).toEqual(answer.headers);
      expect(Buffer.from(replay.answer.body).toString()).toBe('{"id":1}');
    });

    it('refuses the key sent with another request (fingerprint), running or completed', async () => {
      const { store } = storeOn();
      const scope = freshScope();
      await store.begin(scope, 'fp');
      expect(await store.begin(scope, 'other')).toEqual({ kind: 'mismatch' });
      await store.complete(scope, answer);
      expect(await store.begin(scope, 'other')).toEqual({ kind: 'mismatch' });
    });

    it("keeps one caller's key apart from another caller's and another tenant's", async () => {
      const { store } = storeOn();
      const scope = freshScope();
      await store.begin(scope, 'fp');
      expect(await store.begin({ ...scope, principal: 'key-2' }, 'fp')).toEqual({ kind: 'owned' });
      expect(await store.begin({ ...scope, tenant: 't2' }, 'fp')).toEqual({ kind: 'owned' });
    });

    it('frees a released key (the owner answered 5xx) so the retry runs', async () => {
      const { store } = storeOn();
      const scope = freshScope();
      await store.begin(scope, 'fp');
      await store.release(scope);
      expect(await store.begin(scope, 'fp')).toEqual({ kind: 'owned' });
      // Releasing a completed key does nothing: its answer stays.
      await store.complete(scope, answer);
      await store.release(scope);
      expect((await store.begin(scope, 'fp')).kind).toBe('replay');
    });

    it('keeps a key in flight for the whole window (its process may have acted before dying), then lets it be used again and sweeps it', async () => {
      const { store, clock } = storeOn();
      const scope = freshScope();
      await store.begin(scope, 'fp');
      clock.advance(WINDOW - 1);
      expect(await store.begin(scope, 'fp')).toEqual({ kind: 'in_flight' });
      clock.advance(1);
      expect(await store.begin(scope, 'another request')).toEqual({ kind: 'owned' });
      // Rows of the other tests, which began at the same clock time, are past their window now too.
      await store.sweep();
      const swept = freshScope();
      await store.begin(swept, 'fp');
      await store.complete(swept, answer);
      expect(await store.sweep()).toBe(0);
      clock.advance(WINDOW);
      expect(await store.sweep()).toBe(2);
      expect(await store.begin(swept, 'other')).toEqual({ kind: 'owned' });
    });

    it('commits the stored answer with the writes of the transaction it is given, or not at all', async () => {
      const { store } = storeOn();
      const scope = freshScope();
      await store.begin(scope, 'fp');
      await expect(
        fixture.db().transaction(async (tx) => {
          await store.complete(scope, answer, tx);
          throw new Error('the request failed after all');
        }),
      ).rejects.toThrow('failed after all');
      expect(await store.begin(scope, 'fp')).toEqual({ kind: 'in_flight' });
      await fixture.db().transaction((tx) => store.complete(scope, answer, tx));
      expect((await store.begin(scope, 'fp')).kind).toBe('replay');
    });

    it('lets exactly one of many racing requests with one key run, across handles (replicas)', async () => {
      const clock = manualClock();
      const handles = [fixture.db(), await fixture.anotherHandle(), await fixture.anotherHandle()];
      const stores = handles.map((db) => createIdempotencyStore({ db, clock, windowMs: WINDOW }));
      const scope = freshScope();
      const claims = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (stores[i % stores.length] as (typeof stores)[0]).begin(scope, 'fp')),
      );
      expect(claims.filter((c) => c.kind === 'owned')).toHaveLength(1);
      expect(claims.filter((c) => c.kind === 'in_flight')).toHaveLength(11);
    });
  });
});
