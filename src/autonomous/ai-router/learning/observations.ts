import { isSystemEvent } from '../../../platform/events/index.ts';
import type { Complexity } from '../types.ts';
import type { Observation } from './estimates.ts';

/** Subjects of the proxied-call events (emitted by the proxy, see docs/learning.md). */
export const REQUEST_COMPLETED = 'ai.request.completed';
export const REQUEST_FAILED = 'ai.request.failed';
/** Subject of the event a recorded feedback outcome produces. */
export const OUTCOME_RECORDED = 'ai.outcome.recorded';

/** One provider call inside a proxied request. */
export interface CallAttempt {
  readonly model: string;
  readonly outcome: string;
  readonly kind: string | null;
  readonly latency_ms: number | null;
}

/** What learning reads from an `ai.request.completed` / `ai.request.failed` payload. */
export interface CallEvent {
  readonly event_id: string;
  readonly at: number;
  readonly request_id: string;
  readonly decision_id: string | null;
  readonly tenant: string;
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly confidence: number | null;
  readonly cached: boolean;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  readonly cost_usd: number | null;
  readonly latency_ms: number | null;
  readonly attempts: readonly CallAttempt[];
}

/** The payload of `ai.outcome.recorded`: a stored feedback outcome. */
export interface RecordedOutcome {
  readonly id: string;
  readonly decision_id: string;
  readonly source: 'feedback';
  readonly tenant: string;
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly success: boolean;
  readonly quality_score: number | null;
  readonly latency_ms: number | null;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  readonly cost_usd: number | null;
  readonly confidence: number | null;
  readonly recorded_at: string;
}

// Failures that are the model's (or its endpoint's) doing; rate limits and our own bad requests say nothing about it.
const MODEL_FAILURES = new Set(['server', 'timeout', 'bad_response', 'unreachable']);

const COMPLEXITIES = new Set(['low', 'medium', 'high']);
const num = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
const str = (value: unknown): string | null => (typeof value === 'string' && value !== '' ? value : null);

/**
 * Reads a call event; throws on one that lacks what learning needs (the bus retries, then
 * dead-letters it, so a producer bug is visible rather than silently ignored).
 */
export function parseCallEvent(data: unknown): CallEvent {
  if (!isSystemEvent(data)) throw new Error('not a SystemEvent');
  const p = data.payload;
  const model = str(p.model);
  const taskType = str(p.task_type);
  const complexity = p.complexity;
  const requestId = str(p.request_id);
  if (model === null || taskType === null || requestId === null || typeof complexity !== 'string' || !COMPLEXITIES.has(complexity)) {
    throw new Error(`event ${data.event_id} (${data.event_type}) lacks request_id, model, task_type or complexity`);
  }
  const attempts = Array.isArray(p.attempts) ? p.attempts : [];
  return {
    event_id: data.event_id,
    at: Date.parse(data.timestamp),
    request_id: requestId,
    decision_id: str(p.decision_id),
    // Call events from before they named a tenant were all the default tenant's (as in findDecision).
    tenant: str(p.tenant) ?? 'default',
    model,
    task_type: taskType,
    complexity: complexity as Complexity,
    confidence: num(p.confidence),
    cached: p.cached === true,
    prompt_tokens: num(p.prompt_tokens),
    completion_tokens: num(p.completion_tokens),
    cost_usd: num(p.cost_usd),
    latency_ms: num(p.latency_ms),
    attempts: attempts.flatMap((a: unknown): CallAttempt[] => {
      const attempt = a as Record<string, unknown> | null;
      const attemptModel = str(attempt?.model);
      const outcome = str(attempt?.outcome);
      if (attemptModel === null || outcome === null) return [];
      return [{ model: attemptModel, outcome, kind: str(attempt?.kind), latency_ms: num(attempt?.latency_ms) }];
    }),
  };
}

/** 1 for a successful attempt, 0 for a failure that is the model's, null when the attempt says nothing about it. */
export function attemptSuccess(attempt: CallAttempt): 0 | 1 | null {
  if (attempt.outcome === 'success') return 1;
  return attempt.kind !== null && MODEL_FAILURES.has(attempt.kind) ? 0 : null;
}

/** One `call` observation per attempt that tells something; none for a cached answer (no model was called). */
export function callObservations(
  event: Pick<CallEvent, 'tenant' | 'cached' | 'attempts' | 'task_type' | 'complexity' | 'at'>,
): Observation[] {
  if (event.cached) return [];
  return event.attempts.flatMap((attempt): Observation[] => {
    const success = attemptSuccess(attempt);
    if (success === null) return [];
    return [
      {
        tenant: event.tenant,
        evidence: 'call',
        model: attempt.model,
        taskType: event.task_type,
        complexity: event.complexity,
        success,
        // A failed attempt's latency is its timeout or error, not the model's typical speed.
        latencyMs: success === 1 ? attempt.latency_ms : null,
        at: event.at,
      },
    ];
  });
}

/** The `outcome` observation of a feedback: its quality score when given, else 1 or 0. */
export function feedbackObservation(outcome: RecordedOutcome): Observation {
  return {
    tenant: outcome.tenant,
    evidence: 'outcome',
    model: outcome.model,
    taskType: outcome.task_type,
    complexity: outcome.complexity,
    success: outcome.quality_score ?? (outcome.success ? 1 : 0),
    latencyMs: outcome.latency_ms,
    at: Date.parse(outcome.recorded_at),
  };
}

/** Reads `ai.outcome.recorded`; throws on a malformed one. */
export function parseRecordedOutcome(data: unknown): RecordedOutcome {
  if (!isSystemEvent(data)) throw new Error('not a SystemEvent');
  const p = data.payload as Partial<RecordedOutcome>;
  if (
    typeof p.tenant !== 'string' ||
    p.tenant === '' ||
    typeof p.model !== 'string' ||
    typeof p.task_type !== 'string' ||
    typeof p.success !== 'boolean' ||
    typeof p.recorded_at !== 'string'
  ) {
    throw new Error(`event ${data.event_id} (${data.event_type}) is not a recorded outcome`);
  }
  return data.payload as unknown as RecordedOutcome;
}
