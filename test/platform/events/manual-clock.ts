import type { Clock } from '../../../src/platform/clock.ts';

/** A clock that moves only when the test advances it; its sleeps end when their time comes, or on abort. */
export interface ManualClock extends Clock {
  /** Moves time forward, ending every sleep that falls due. */
  advance(ms: number): void;
  /** Sleeps waiting for time to pass. */
  readonly sleepers: number;
}

export function createManualClock(start = 1_700_000_000_000): ManualClock {
  let now = start;
  const sleeping = new Set<{ readonly until: number; readonly wake: () => void }>();
  return {
    now: () => now,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted === true) return reject(signal.reason);
        const sleeper = {
          until: now + ms,
          wake: () => {
            sleeping.delete(sleeper);
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = (): void => {
          sleeping.delete(sleeper);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        sleeping.add(sleeper);
      }),
    advance(ms) {
      now += ms;
      for (const sleeper of [...sleeping]) if (sleeper.until <= now) sleeper.wake();
    },
    get sleepers() {
      return sleeping.size;
    },
  };
}
