import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../../../platform/platform.ts';
import type { AiConfig } from '../config.ts';
import type { Subscription } from '../../../platform/bus/port.ts';
import { createBudgetIndex } from './budget-index.ts';
import { createBudgetGuard, type BudgetGuard } from './budget-guard.ts';
import { BUDGET_CHANGED, createBudgetStore, type BudgetStore } from './budget-store.ts';
import { budgetRoutes } from './routes.ts';
import { createUsageCounter } from './usage-counter.ts';

export type { BudgetGuard, BudgetHold } from './budget-guard.ts';
export { BUDGET_CHANGED } from './budget-store.ts';
export { budgetErrors, retryAfterSeconds } from './errors.ts';
export { USAGE_CONSUMER } from './usage-counter.ts';

export interface Budgets {
  /** Reserve before a call, settle or release after it (H3's proxy). */
  readonly guard: BudgetGuard;
  readonly store: BudgetStore;
  /** Registers `/budgets` and `/usage`; mount under `/api/v1/autonomous/ai`. */
  readonly routes: FastifyPluginAsync;
  /** Rebuilds this replica's budget index from the database. */
  reload(): Promise<void>;
  /** Releases holds whose process died (also done on a timer and when a reservation is refused). */
  releaseExpired(): Promise<number>;
  /** Loads the budgets, follows other replicas' changes, starts the usage counter and the hold sweep. Call before serving. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Budgets and usage for the AI gateway. Each replica keeps the set of budgets in memory (loaded at
 * start, reloaded after its own changes and on `ai.budget.changed` from others), so a caller under
 * no budget costs the proxy no I/O; limits, spend and holds live in the database, where
 * reservations are exact across replicas.
 */
export function createBudgets(
  platform: Pick<Platform, 'db' | 'bus' | 'clock' | 'logger' | 'metrics' | 'relay' | 'config'>,
  ai: Pick<AiConfig, 'budgets'>,
): Budgets {
  const { db, bus, clock, logger, metrics, relay } = platform;
  const holdTtlMs = ai.budgets.hold_ttl;
  const index = createBudgetIndex();
  const refusals = metrics.counter('blocks_ai_budget_refusals_total', 'AI calls refused because a budget would be exceeded', [
    'scope',
    'period',
  ]);
  const guard = createBudgetGuard({
    db,
    clock,
    index,
    holdTtlMs,
    onRefused: (budget) => refusals.inc({ scope: budget.scope, period: budget.period }),
  });

  // Reloads run one after another so that an older read never replaces a newer one.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): Promise<void> =>
    (reloading = reloading
      .catch(() => undefined)
      .then(async () => {
        index.replace(await store.loadKeys());
      }));
  const store = createBudgetStore({
    db,
    onChanged: async () => {
      relay.notify();
      // The change is committed: a failed reload is logged (and retried on the change's event), not reported as a failed change.
      await reload().catch((error: unknown) => logger.error({ err: error }, 'AI budget reload failed'));
    },
  });
  const usage = createUsageCounter(platform);

  let subscription: Subscription | undefined;
  let sweeping: AbortController | undefined;
  let sweeper: Promise<void> | undefined;
  // Often enough that a dead process's holds come back within about one TTL, rarely enough to cost nothing.
  const sweepEveryMs = Math.max(1_000, Math.min(holdTtlMs, 60_000));
  const sweepLoop = async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) {
      try {
        await clock.sleep(sweepEveryMs, signal);
      } catch {
        return; // stopped
      }
      const released = await guard.releaseExpired().catch((error: unknown) => {
        logger.warn({ err: error }, 'AI budget hold sweep failed');
        return 0;
      });
      if (released > 0) logger.info({ released }, 'released AI budget holds of calls that never settled');
    }
  };

  return {
    guard,
    store,
    reload,
    releaseExpired: () => guard.releaseExpired(),
    routes: async (app) => {
      await app.register(budgetRoutes, { store, db, clock });
    },
    async start() {
      await reload();
      subscription = await bus.subscribe(
        { consumer: `ai-budgets-${randomUUID().slice(0, 8)}`, subject: BUDGET_CHANGED, ephemeral: true },
        () => reload(),
      );
      await usage.start();
      sweeping = new AbortController();
      sweeper = sweepLoop(sweeping.signal);
    },
    async stop() {
      sweeping?.abort();
      await sweeper;
      await usage.stop();
      await subscription?.stop();
      subscription = undefined;
    },
  };
}
