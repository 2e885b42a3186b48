import { describe, it, expect } from 'vitest';
import { createGroupCommit } from '../../src/platform/group-commit.ts';

const deferred = () => {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
};

describe('group commit', () => {
  it('groups the items of one event-loop turn, and those that arrive while a batch is written', async () => {
    const batches: number[][] = [];
    const gate = deferred();
    const commit = createGroupCommit<number, string>({
      maxBatch: 100,
      write: async (items) => {
        batches.push([...items]);
        if (batches.length === 1) await gate.promise;
        return items.map((i) => `ok ${i}`);
      },
    });
    const first = [1, 2].map((i) => commit.submit(i));
    expect(batches).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1, 2]]);
    const rest = [3, 4, 5].map((i) => commit.submit(i));
    gate.release();
    expect(await Promise.all(first)).toEqual(['ok 1', 'ok 2']);
    expect(await Promise.all(rest)).toEqual(['ok 3', 'ok 4', 'ok 5']);
    expect(batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it('never writes more than maxBatch items at once', async () => {
    const sizes: number[] = [];
    const commit = createGroupCommit<number, number>({ maxBatch: 3, write: async (items) => (sizes.push(items.length), items) });
    expect(await Promise.all(Array.from({ length: 10 }, (_, i) => commit.submit(i)))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
  });

  it('fails every item of a failed batch and carries on with the next', async () => {
    let calls = 0;
    const gate = deferred();
    const commit = createGroupCommit<number, number>({
      maxBatch: 10,
      write: async (items) => {
        calls++;
        if (calls === 1) await gate.promise;
        if (calls === 2) throw new Error('disk full');
        return items;
      },
    });
    const first = commit.submit(0);
    await new Promise((resolve) => setImmediate(resolve));
    const failing = [commit.submit(1), commit.submit(2)];
    gate.release();
    await first;
    await expect(failing[0]).rejects.toThrow('disk full');
    await expect(failing[1]).rejects.toThrow('disk full');
    expect(await commit.submit(3)).toBe(3);
  });

  it('rejects the batch when the writer returns the wrong number of results', async () => {
    const commit = createGroupCommit<number, number>({ maxBatch: 10, write: async () => [] });
    await expect(commit.submit(1)).rejects.toThrow(/0 results for 1 items/);
  });
});
