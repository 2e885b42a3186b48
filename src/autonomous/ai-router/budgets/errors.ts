import { BlocksError } from '../../../platform/errors.ts';
import type { BudgetKey } from './periods.ts';
import { defineErrors } from '../../../platform/define-errors.ts';

/** Every error code the budgets and usage API raises, with its HTTP status and the title docs/errors.md shows. */
export const budgetErrors = defineErrors(import.meta.url, {
  BUDGET_EXCEEDED: { status: 402, title: 'Budget exceeded' },
  BUDGET_NOT_FOUND: { status: 404, title: 'Budget not found' },
  BUDGET_VERSION_MISMATCH: { status: 412, title: 'Budget version mismatch' },
  INVALID_BUDGET: { status: 400, title: 'Invalid budget' },
  INVALID_USAGE_QUERY: { status: 400, title: 'Invalid usage query' },
});

export type BudgetErrorCode = keyof typeof budgetErrors;

/** What a refusal reports about the budget that refused. */
export interface ExceededBudget extends BudgetKey {
  readonly limitUsd: number;
  readonly spentUsd: number;
  readonly heldUsd: number;
  readonly requestedUsd: number;
  readonly resetsAt: Date;
}

/**
 * A call would take a budget past its limit. `retry_after` (seconds until the period resets) is
 * what the route answering it should send as `Retry-After`; see {@link retryAfterSeconds}.
 */
export function budgetExceeded(budget: ExceededBudget, now: number): BlocksError {
  const retryAfter = Math.max(1, Math.ceil((budget.resetsAt.getTime() - now) / 1000));
  const who = budget.scope === 'tenant' ? `tenant '${budget.subject}'` : `API key ${budget.subject} of tenant '${budget.tenant}'`;
  return new BlocksError(
    'BUDGET_EXCEEDED',
    budgetErrors.BUDGET_EXCEEDED.status,
    `The ${budget.period === 'day' ? 'daily' : 'monthly'} budget of ${who} is ${usd(budget.limitUsd)}; ` +
      `${usd(budget.spentUsd)} is spent and ${usd(budget.heldUsd)} held for calls in flight, ` +
      `so this call's ${usd(budget.requestedUsd)} does not fit. It resets at ${budget.resetsAt.toISOString()}.`,
    {
      extensions: {
        budget: { scope: budget.scope, subject: budget.subject, period: budget.period },
        limit_usd: budget.limitUsd,
        spent_usd: budget.spentUsd,
        held_usd: budget.heldUsd,
        requested_usd: budget.requestedUsd,
        resets_at: budget.resetsAt.toISOString(),
        retry_after: retryAfter,
      },
    },
  );
}

/** Seconds to put in `Retry-After` for a BUDGET_EXCEEDED error; undefined for any other error. */
export function retryAfterSeconds(error: unknown): number | undefined {
  if (!(error instanceof BlocksError) || error.code !== 'BUDGET_EXCEEDED') return undefined;
  const value = error.extensions.retry_after;
  return typeof value === 'number' ? value : undefined;
}

export const budgetNotFound = (key: Omit<BudgetKey, 'tenant'>, why?: string): BlocksError =>
  new BlocksError(
    'BUDGET_NOT_FOUND',
    budgetErrors.BUDGET_NOT_FOUND.status,
    why ?? `No ${key.period === 'day' ? 'daily' : 'monthly'} budget for ${key.scope} '${key.subject}'.`,
    { extensions: { budget: { scope: key.scope, subject: key.subject, period: key.period } } },
  );

export const budgetVersionMismatch = (expected: number, actual: number): BlocksError =>
  new BlocksError(
    'BUDGET_VERSION_MISMATCH',
    budgetErrors.BUDGET_VERSION_MISMATCH.status,
    `The budget is at version ${actual}, not ${expected}; read it again and retry.`,
    { extensions: { expected_version: expected, version: actual } },
  );

export const invalidBudget = (field: string, detail: string): BlocksError =>
  new BlocksError('INVALID_BUDGET', budgetErrors.INVALID_BUDGET.status, `${field}: ${detail}`, { extensions: { field } });

export const invalidUsageQuery = (parameter: string, detail: string): BlocksError =>
  new BlocksError('INVALID_USAGE_QUERY', budgetErrors.INVALID_USAGE_QUERY.status, `${parameter}: ${detail}`, {
    extensions: { parameter },
  });

const usd = (value: number): string => `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 2)}`;
