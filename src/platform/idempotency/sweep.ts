import type { Logger } from '../logger.ts';
import { createPeriodicJob, type PeriodicJob } from '../periodic-job.ts';
import type { IdempotencyStore } from './store.ts';

export type IdempotencySweep = PeriodicJob;

/**
 * Deletes keys past their window every `intervalMs` (0: never) in the background. Several
 * replicas may run it: deletes are idempotent, and an expired key is taken over by its next
 * request whether or not the sweep got to it.
 */
export function createIdempotencySweep(options: {
  readonly store: IdempotencyStore;
  readonly intervalMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
}): IdempotencySweep {
  return createPeriodicJob({
    intervalMs: options.intervalMs,
    run: () =>
      options.store.sweep().then(
        (deleted) => {
          if (deleted > 0) options.logger.info({ deleted }, 'swept expired idempotency keys');
        },
        (error: unknown) => options.logger.warn({ err: error }, 'sweeping idempotency keys failed'),
      ),
  });
}
