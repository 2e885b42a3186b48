import { BlocksError } from '../../../platform/errors.ts';
import { defineErrors } from '../../../platform/define-errors.ts';

/** Every error code the AI router's learning part (feedback, stats) raises; each is listed in docs/errors.md. */
export const learningErrors = defineErrors(import.meta.url, {
  DECISION_NOT_FOUND: { status: 404, title: 'Decision not found' },
  OUTCOME_ALREADY_RECORDED: { status: 409, title: 'Outcome already recorded' },
  INVALID_STATS_WINDOW: { status: 400, title: 'Invalid stats window' },
});

export type LearningErrorCode = keyof typeof learningErrors;

/** No decision with this id that the caller's tenant made (another tenant's decision is not revealed). */
export const decisionNotFound = (decisionId: string): BlocksError =>
  new BlocksError('DECISION_NOT_FOUND', learningErrors.DECISION_NOT_FOUND.status, `No routing decision ${decisionId} for this tenant.`, {
    extensions: { decision_id: decisionId },
  });

/** Feedback for this decision was already recorded; an outcome is not changed afterwards. */
export const outcomeAlreadyRecorded = (decisionId: string): BlocksError =>
  new BlocksError(
    'OUTCOME_ALREADY_RECORDED',
    learningErrors.OUTCOME_ALREADY_RECORDED.status,
    `Feedback for decision ${decisionId} was already recorded.`,
    { extensions: { decision_id: decisionId } },
  );

/** `window` of GET /ai/stats is not a duration, or longer than the longest allowed. */
export const invalidStatsWindow = (window: string, maxMs: number): BlocksError =>
  new BlocksError(
    'INVALID_STATS_WINDOW',
    learningErrors.INVALID_STATS_WINDOW.status,
    `window '${window}' must be a duration such as 30m, 24h or 7d, at most ${maxMs / 86_400_000} days.`,
    { extensions: { field: 'window' } },
  );
