/** Whom a budget limits: the whole tenant, or one API key's calls for that tenant. */
export type BudgetScope = 'tenant' | 'api_key';
/** Budgets reset at 00:00 UTC each day, or on the first of each month at 00:00 UTC. */
export type BudgetPeriod = 'day' | 'month';

export const BUDGET_SCOPES: readonly BudgetScope[] = ['tenant', 'api_key'];
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['day', 'month'];

/** A budget's identity. For scope `tenant` the subject is the tenant itself. */
export interface BudgetKey {
  readonly tenant: string;
  readonly scope: BudgetScope;
  readonly subject: string;
  readonly period: BudgetPeriod;
}

/** The period `instant` (ms since the epoch) falls in: its first day as `YYYY-MM-DD`, and the instant it ends. */
export function periodOf(period: BudgetPeriod, instant: number): { start: string; resetsAt: Date } {
  const at = new Date(instant);
  const year = at.getUTCFullYear();
  const month = at.getUTCMonth();
  if (period === 'day') {
    const day = at.getUTCDate();
    return { start: isoDate(Date.UTC(year, month, day)), resetsAt: new Date(Date.UTC(year, month, day + 1)) };
  }
  return { start: isoDate(Date.UTC(year, month, 1)), resetsAt: new Date(Date.UTC(year, month + 1, 1)) };
}

/** When the period that started on `start` (`YYYY-MM-DD`) ends. */
export function resetsAtOf(period: BudgetPeriod, start: string): Date {
  return periodOf(period, Date.parse(`${start}T00:00:00Z`)).resetsAt;
}

export const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** A total order on budget keys: every transaction locks spend rows in it, so two never wait on each other in a cycle. */
export const compareBudgetKeys = (a: BudgetKey, b: BudgetKey): number =>
  cmp(a.tenant, b.tenant) || cmp(a.scope, b.scope) || cmp(a.subject, b.subject) || cmp(a.period, b.period);

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
