/**
 * Runs the work handed to it one piece at a time, in call order: each starts once the previous one
 * settled, whether it resolved or threw. Each caller gets its own work's result or error.
 */
export type OneAtATime = <T>(work: () => Promise<T>) => Promise<T>;

export function createOneAtATime(): OneAtATime {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const run = tail.then(work);
    // The tail only orders the work; a failure is its caller's, not the next one's.
    tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
}
