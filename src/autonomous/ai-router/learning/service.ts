import { randomUUID } from 'node:crypto';
import type { Database } from '../../../platform/db/port.ts';
import { appendEvent } from '../../../platform/events/index.ts';
import type { Tenancy } from '../../../platform/http/caller.ts';
import type { ModelCatalog } from '../catalog.ts';
import type { Complexity } from '../types.ts';
import { calibrationOf, type Calibration } from './calibration.ts';
import type { LearningModelEstimates } from './estimates.ts';
import { decisionNotFound, outcomeAlreadyRecorded } from './errors.ts';
import { OUTCOME_RECORDED, type RecordedOutcome } from './observations.ts';
import { calibrationSums, findDecision, insertFeedback } from './store.ts';

export interface FeedbackInput {
  readonly decision_id: string;
  readonly success: boolean;
  readonly quality_score?: number;
  readonly latency_ms?: number;
  readonly prompt_tokens?: number;
  readonly completion_tokens?: number;
  readonly cost_usd?: number;
}

export interface RequestTrace {
  readonly correlationId: string;
  readonly traceparent: string;
}

export interface ModelStats {
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly prior: { readonly quality: number; readonly latency_ms: number | null };
  readonly observations: number;
  readonly quality: number;
  readonly latency_ms: number | null;
  readonly answer_quality: number;
  readonly outcome_observations: number;
  readonly availability: number;
  readonly call_observations: number;
}

export interface StatsQuery {
  readonly windowMs: number;
  readonly bins: number;
  readonly source: 'feedback' | 'proxy' | null;
  readonly model?: string;
  readonly taskType?: string;
}

export interface LearningStats {
  readonly estimates: ModelStats[];
  readonly calibration: Calibration & { readonly since: string; readonly source: 'feedback' | 'proxy' | 'all' };
}

export interface LearningService {
  /**
   * Records the outcome of a decision the caller's tenant made, with its `ai.outcome.recorded`
   * event in the same transaction. Estimates learn from the event, on every replica.
   * @throws BlocksError DECISION_NOT_FOUND (404) for an unknown id or another tenant's decision,
   *   OUTCOME_ALREADY_RECORDED (409) when the decision already has feedback.
   */
  recordFeedback(caller: Tenancy, input: FeedbackInput, trace: RequestTrace): Promise<RecordedOutcome>;
  /**
   * The caller's tenant's current estimates for the enabled catalog (learned from its own evidence
   * only; the catalog prior where it has none), and the calibration of its recorded outcomes.
   */
  stats(caller: Tenancy, query: StatsQuery): Promise<LearningStats>;
}

export interface LearningServiceOptions {
  readonly db: Database;
  readonly estimates: LearningModelEstimates;
  readonly loadCatalog: () => Promise<ModelCatalog | null>;
  readonly now: () => number;
  /** Called once an event is committed (wakes the outbox relay). */
  readonly onEventAppended: () => void;
}

const round = (x: number, digits = 6): number => Math.round(x * 10 ** digits) / 10 ** digits;

export function createLearningService(options: LearningServiceOptions): LearningService {
  const { db, estimates, loadCatalog, now, onEventAppended } = options;
  return {
    async recordFeedback(caller, input, trace) {
      const decision = await findDecision(db, input.decision_id);
      // Another tenant's decision answers exactly like a missing one: its existence is not revealed.
      if (decision === null || decision.tenant !== caller.tenant) throw decisionNotFound(input.decision_id);
      const stored = await db.transaction(async (tx) => {
        const outcome = await insertFeedback(tx, {
          id: randomUUID(),
          decision_id: input.decision_id,
          source: 'feedback',
          tenant: decision.tenant,
          model: decision.model,
          task_type: decision.task_type,
          complexity: decision.complexity,
          success: input.success,
          quality_score: input.quality_score ?? null,
          latency_ms: input.latency_ms ?? null,
          prompt_tokens: input.prompt_tokens ?? null,
          completion_tokens: input.completion_tokens ?? null,
          cost_usd: input.cost_usd ?? null,
          confidence: decision.confidence,
        });
        if (outcome === null) return null;
        await appendEvent(tx, {
          event_type: OUTCOME_RECORDED,
          source_service: 'autonomous.ai-router',
          target_services: ['autonomous.ai-router'],
          correlation_id: trace.correlationId,
          traceparent: trace.traceparent,
          key: decision.tenant,
          payload: outcome,
        });
        return outcome;
      });
      if (stored === null) throw outcomeAlreadyRecorded(input.decision_id);
      onEventAppended();
      return stored;
    },

    async stats(caller, query) {
      const catalog = await loadCatalog();
      const learned = estimates.forTenant(caller.tenant);
      const rows: ModelStats[] = [];
      for (const spec of catalog?.models ?? []) {
        if (query.model !== undefined && spec.model !== query.model) continue;
        for (const taskType of spec.task_types) {
          if (query.taskType !== undefined && taskType !== query.taskType) continue;
          const byComplexity = spec.quality[taskType];
          if (byComplexity === undefined) continue;
          for (const complexity of ['low', 'medium', 'high'] as const) {
            const prior = { quality: byComplexity[complexity], latencyMs: spec.typical_latency_ms };
            const e = learned.explain(spec.model, taskType, complexity, prior);
            rows.push({
              model: spec.model,
              task_type: taskType,
              complexity,
              prior: { quality: prior.quality, latency_ms: prior.latencyMs },
              observations: round(e.observations, 3),
              quality: round(e.quality),
              latency_ms: e.latencyMs === null ? null : round(e.latencyMs, 1),
              answer_quality: round(e.answerQuality),
              outcome_observations: round(e.outcomeObservations, 3),
              availability: round(e.availability),
              call_observations: round(e.callObservations, 3),
            });
          }
        }
      }
      const since = new Date(now() - query.windowMs);
      const sums = await calibrationSums(db, { tenant: caller.tenant, since, bins: query.bins, source: query.source });
      return {
        estimates: rows,
        calibration: { since: since.toISOString(), source: query.source ?? 'all', ...calibrationOf(sums, query.bins) },
      };
    },
  };
}
