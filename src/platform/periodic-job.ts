/** A background job started and stopped with its process. */
export interface PeriodicJob {
  start(): void;
  stop(): void;
}

/**
 * Runs `run` every `intervalMs` (0 or less: never) without keeping the process alive; a run still
 * in progress when the next is due is not started twice. `run` reports its own outcome: a
 * rejection here would have no one to hear it.
 */
export function createPeriodicJob(options: { readonly intervalMs: number; readonly run: () => Promise<void> }): PeriodicJob {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const tick = (): void => {
    running ??= options.run().finally(() => (running = undefined));
  };
  return {
    start() {
      if (timer !== undefined || options.intervalMs <= 0) return;
      timer = setInterval(tick, options.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}
