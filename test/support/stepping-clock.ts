import type { Clock } from '../../src/platform/clock.ts';

/** A clock the test moves by hand; a sleep moves it too, and ends at once. */
export interface SteppingClock extends Clock {
  advance(ms: number): void;
}

export function steppingClock(start = 1_700_000_000_000): SteppingClock {
  let now = start;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}
