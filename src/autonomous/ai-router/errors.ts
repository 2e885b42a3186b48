import { BlocksError } from '../../platform/errors.ts';
import { defineErrors } from '../../platform/define-errors.ts';

/**
 * Every error code the AI router raises, with its HTTP status and a short title for
 * docs/errors.md. Clients see the 4xx codes and AI_ROUTER_TIMEOUT; INVALID_ROUTER_CONFIG stops start-up.
 */
export const aiRouterErrors = defineErrors(import.meta.url, {
  UNKNOWN_TASK_TYPE: { status: 422, title: 'Unknown task type' },
  NO_ELIGIBLE_MODEL: { status: 422, title: 'No eligible model' },
  INVALID_ROUTE_CONTEXT: { status: 400, title: 'Invalid route context' },
  AI_ROUTER_TIMEOUT: { status: 503, title: 'No routing decision in time' },
  INVALID_ROUTER_CONFIG: { status: 500, title: 'Invalid AI router configuration' },
  INVALID_MODEL: { status: 400, title: 'Invalid model' },
  MODEL_NOT_FOUND: { status: 404, title: 'Model not found' },
  MODEL_EXISTS: { status: 409, title: 'Model already exists' },
  MODEL_VERSION_MISMATCH: { status: 412, title: 'Model version mismatch' },
});

export type AiRouterErrorCode = keyof typeof aiRouterErrors;

/** The request's task type is served by no model in the catalog. */
export const unknownTaskType = (taskType: string, knownTaskTypes: readonly string[]): BlocksError =>
  new BlocksError(
    'UNKNOWN_TASK_TYPE',
    aiRouterErrors.UNKNOWN_TASK_TYPE.status,
    `Unknown task type '${taskType}'; known task types: ${knownTaskTypes.join(', ')}.`,
    { extensions: { task_type: taskType, known_task_types: [...knownTaskTypes] } },
  );

/**
 * Models serve the task type, but every one fails a hard constraint. `excluded` maps each
 * constraint (in check order) to the models it removed.
 */
export const noEligibleModel = (args: {
  taskType: string;
  promptTokens: number;
  expectedOutputTokens: number;
  largestContextWindow: number;
  excluded: Readonly<Record<string, readonly string[]>>;
}): BlocksError => {
  const removed = Object.entries(args.excluded).map(([constraint, models]) => {
    const detail = constraint === 'context_window' ? ` (largest context window: ${args.largestContextWindow} tokens)` : '';
    return `${constraint} removed ${models.join(', ')}${detail}`;
  });
  return new BlocksError(
    'NO_ELIGIBLE_MODEL',
    aiRouterErrors.NO_ELIGIBLE_MODEL.status,
    `No model for task type '${args.taskType}' passes the hard constraints for ${args.promptTokens} prompt ` +
      `+ ${args.expectedOutputTokens} expected output tokens: ${removed.join('; ')}.`,
    {
      extensions: {
        task_type: args.taskType,
        prompt_tokens: args.promptTokens,
        expected_output_tokens: args.expectedOutputTokens,
        largest_context_window: args.largestContextWindow,
        excluded: args.excluded,
      },
    },
  );
};

/** A constraint field of a route request's `context` has the wrong type or value (in-process callers; HTTP validates first). */
export const invalidRouteContext = (field: string, problem: string): BlocksError =>
  new BlocksError('INVALID_ROUTE_CONTEXT', aiRouterErrors.INVALID_ROUTE_CONTEXT.status, `context.${field} ${problem}.`, {
    extensions: { field: `context.${field}` },
  });

/** No decision within `ai_router_timeout`; the request may be retried. */
export const aiRouterTimeout = (timeoutMs: number): BlocksError =>
  new BlocksError('AI_ROUTER_TIMEOUT', aiRouterErrors.AI_ROUTER_TIMEOUT.status, `No routing decision within ${timeoutMs} ms`, {
    extensions: { timeout_ms: timeoutMs },
  });

/**
 * The model catalog or router settings are wrong. `path` names the bad entry and field,
 * e.g. `models[2] (gpt-4o).quality.code.high`.
 */
export const invalidRouterConfig = (path: string, problem: string): BlocksError =>
  new BlocksError('INVALID_ROUTER_CONFIG', aiRouterErrors.INVALID_ROUTER_CONFIG.status, `${path}: ${problem}`, { extensions: { path } });
