import { randomUUID } from 'node:crypto';
import type { Database } from '../../platform/db/port.ts';
import type { Tenancy } from '../../platform/http/caller.ts';
import type { RouteDecider } from './decide.ts';
import type { RouteDecision, RouteRequest } from './types.ts';
import { appendEvents } from '../../platform/events/index.ts';
import type { NewSystemEvent } from '../../platform/events/index.ts';
import { createGroupCommit } from '../../platform/group-commit.ts';

/** Subject of the event every routing decision produces. */
export const ROUTE_DECIDED = 'ai.route.decided';

/** What the caller's request carries along into the event. */
export interface RequestTrace {
  readonly correlationId: string;
  readonly traceparent: string;
}

export interface RoutedDecision extends RouteDecision {
  /** Id of this decision: outcomes are recorded against it. */
  readonly decision_id: string;
}

export interface AiRouterService {
  /**
   * Decides which model serves the request and records the decision as an `ai.route.decided`
   * event in the outbox before answering, so an answered decision is never lost. The caller's
   * tenant selects its routing policy (`ai.tenants`) and is recorded in the event.
   * @throws BlocksError UNKNOWN_TASK_TYPE / NO_ELIGIBLE_MODEL (422), INVALID_ROUTE_CONTEXT (400) from the decider.
   */
  route(request: RouteRequest, trace: RequestTrace, caller: Tenancy): Promise<RoutedDecision>;
}

export interface AiRouterServiceOptions {
  readonly decider: RouteDecider;
  readonly db: Database;
  /** Called once the event is committed (wakes the outbox relay). */
  readonly onEventAppended: () => void;
  /** Extra attempts when writing the event fails on a transient database error (`error_retry_attempts`). */
  readonly retryAttempts: number;
}

export function createAiRouterService(options: AiRouterServiceOptions): AiRouterService {
  const { decider, db, onEventAppended, retryAttempts } = options;
  // Decisions made while a write is in flight are written together: one statement per batch
  // instead of one per request. Each caller still waits for its own event to be committed.
  const events = createGroupCommit<NewSystemEvent, unknown>({
    maxBatch: 500,
    write: async (batch) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await appendEvents(db, batch);
        } catch (error) {
          if (attempt >= retryAttempts || !isTransient(error)) throw error;
        }
      }
    },
  });
  return {
    async route(request, trace, caller) {
      const ranked = decider.decide(request, { tenant: caller.tenant });
      const decision: RouteDecision = {
        selected_model: ranked.selected_model,
        confidence: ranked.confidence,
        routing_reason: ranked.routing_reason,
        estimated_cost: ranked.estimated_cost,
      };
      const decisionId = randomUUID();
      const event = {
        event_type: ROUTE_DECIDED,
        source_service: 'autonomous.ai-router',
        target_services: ['core.analytics'],
        correlation_id: trace.correlationId,
        traceparent: trace.traceparent,
        payload: {
          decision_id: decisionId,
          task_type: request.task_type,
          complexity: request.complexity,
          preferred_model: request.preferred_model ?? null,
          tenant: ranked.tenant,
          optimize: ranked.optimize,
          runner_up: ranked.runner_up,
          prompt_tokens: ranked.prompt_tokens,
          ...decision,
        },
      };
      // The decision itself is the change, so the event needs no transaction around it.
      await events.submit(event);
      onEventAppended();
      return { ...decision, decision_id: decisionId };
    },
  };
}

/** Connection-level failures worth one more try; anything else (a constraint, bad SQL) is not. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === 'ECONNRESET' || code === 'ECONNREFUSED');
}
