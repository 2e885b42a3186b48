import { busError } from './errors.ts';
import type { Subscription } from './port.ts';

/** What every adapter does the same around its broker: refuse calls once closed, stop live subscriptions on close. */
export interface BusLifecycle {
  /** Throws `BUS_CLOSED` once `close` has begun. */
  assertOpen(): void;
  /**
   * Remembers a live subscription so `close` can stop it; its `stop` forgets it again. A
   * subscription that finished starting after `close` began is stopped and `BUS_CLOSED` thrown.
   */
  track(subscription: Subscription): Promise<Subscription>;
  /** Stops every live subscription, then runs `release` once; later calls wait for the first. */
  close(release: () => Promise<void>): Promise<void>;
}

export function createBusLifecycle(kind: string): BusLifecycle {
  const live = new Set<Subscription>();
  let closing: Promise<void> | undefined;
  return {
    assertOpen() {
      if (closing !== undefined) throw busError('BUS_CLOSED', `The ${kind} event bus is closed.`);
    },
    async track(subscription) {
      if (closing !== undefined) {
        await subscription.stop();
        throw busError('BUS_CLOSED', `The ${kind} event bus closed while the subscription started.`);
      }
      const tracked: Subscription = {
        consumer: subscription.consumer,
        stop: async () => {
          try {
            await subscription.stop();
          } finally {
            live.delete(tracked);
          }
        },
      };
      live.add(tracked);
      return tracked;
    },
    close(release) {
      closing ??= (async () => {
        await Promise.all([...live].map((subscription) => subscription.stop()));
        await release();
      })();
      return closing;
    },
  };
}
