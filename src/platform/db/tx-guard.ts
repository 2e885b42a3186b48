import { AsyncLocalStorage } from 'node:async_hooks';
import { NestedDatabaseUseError } from './errors.ts';

/**
 * Notices when a database is used directly from inside one of its own transactions. On PGlite that
 * call would queue behind the transaction that is waiting for it; on PostgreSQL it would silently run
 * outside the transaction. Both adapters refuse it the same way so code that passes on one passes on both.
 */
export interface TransactionGuard {
  /** Throws when called from inside an open transaction of this database. */
  assertOutside(operation: string): void;
  /** Runs `work` marked as inside a transaction until it settles. */
  runInside<T>(work: () => Promise<T>): Promise<T>;
}

export function createTransactionGuard(): TransactionGuard {
  // The store is a mutable flag, not a boolean: work started inside a transaction but still running
  // after it closed (a timer, a subscription) inherits the store and must then be allowed through.
  const storage = new AsyncLocalStorage<{ open: boolean }>();
  return {
    assertOutside(operation) {
      if (storage.getStore()?.open === true) throw new NestedDatabaseUseError(operation);
    },
    async runInside(work) {
      const state = { open: true };
      try {
        return await storage.run(state, work);
      } finally {
        state.open = false;
      }
    },
  };
}
