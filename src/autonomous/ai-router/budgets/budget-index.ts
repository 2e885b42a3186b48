import type { Tenancy } from '../../../platform/http/caller.ts';
import { compareBudgetKeys, type BudgetKey } from './periods.ts';

/**
 * This replica's copy of which budgets exist (not their limits or spend, which stay in the
 * database). It lets the guard tell, without I/O, that no budget applies to a caller.
 */
export interface BudgetIndex {
  /** The budgets that limit `caller`'s calls, in lock order; the same empty array when none. O(1) apart from the copy. */
  applicable(caller: Tenancy): readonly BudgetKey[];
  /** Swaps in a fresh list of every budget. */
  replace(keys: readonly BudgetKey[]): void;
  readonly size: number;
}

interface TenantBudgets {
  readonly own: BudgetKey[];
  readonly byKey: Map<string, BudgetKey[]>;
}

const NONE: readonly BudgetKey[] = Object.freeze([]);

export function createBudgetIndex(): BudgetIndex {
  let tenants = new Map<string, TenantBudgets>();
  let size = 0;
  return {
    applicable(caller) {
      const budgets = tenants.get(caller.tenant);
      if (budgets === undefined) return NONE;
      const ofKey = caller.apiKeyId === null ? undefined : budgets.byKey.get(caller.apiKeyId);
      if (ofKey === undefined) return budgets.own.length === 0 ? NONE : budgets.own;
      return [...ofKey, ...budgets.own].sort(compareBudgetKeys);
    },
    replace(keys) {
      const next = new Map<string, TenantBudgets>();
      for (const key of [...keys].sort(compareBudgetKeys)) {
        let budgets = next.get(key.tenant);
        if (budgets === undefined) next.set(key.tenant, (budgets = { own: [], byKey: new Map() }));
        if (key.scope === 'tenant') budgets.own.push(key);
        else {
          const list = budgets.byKey.get(key.subject) ?? [];
          list.push(key);
          budgets.byKey.set(key.subject, list);
        }
      }
      tenants = next;
      size = keys.length;
    },
    get size() {
      return size;
    },
  };
}
