import { describe, expect, it } from 'vitest';
import { createOneAtATime } from '../../src/platform/one-at-a-time.ts';

describe('one at a time', () => {
  it('starts each piece of work after the previous one settled, in call order, each caller getting its own outcome', async () => {
    const oneAtATime = createOneAtATime();
    const log: string[] = [];
    let running = 0;
    const piece = (name: string, ms: number, fail = false) =>
      oneAtATime(async () => {
        running += 1;
        log.push(`start ${name} (${running} running)`);
        await new Promise((resolve) => setTimeout(resolve, ms));
        running -= 1;
        log.push(`end ${name}`);
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const outcomes = await Promise.allSettled([piece('a', 20), piece('b', 5, true), piece('c', 1)]);
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'rejected', reason: new Error('b failed') },
      { status: 'fulfilled', value: 'c' },
    ]);
    expect(log).toEqual(['start a (1 running)', 'end a', 'start b (1 running)', 'end b', 'start c (1 running)', 'end c']);
  });
});
