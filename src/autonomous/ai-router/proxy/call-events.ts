import { createSystemClock, type Clock } from '../../../platform/clock.ts';
import { isTransientDatabaseError, type Database } from '../../../platform/db/index.ts';
import { appendEvents, type NewSystemEvent } from '../../../platform/events/index.ts';
import { createGroupCommit } from '../../../platform/group-commit.ts';
import type { IdempotencyScope, IdempotencyStore, StoredAnswer } from '../../../platform/idempotency/index.ts';
import type { ProviderErrorKind } from '../providers/index.ts';

export const REQUEST_COMPLETED = 'ai.request.completed';
export const REQUEST_FAILED = 'ai.request.failed';

/** One provider call made for a request. */
export interface AttemptRecord {
  readonly model: string;
  readonly provider: string;
  readonly deployment: string;
  /** `success`, or the `PROVIDER_*` code it failed with. */
  readonly outcome: string;
  readonly kind: ProviderErrorKind | null;
  readonly latency_ms: number;
  /**
   * What the provider answered with its failure, bounded and stripped of control characters: kept
   * for the operator in the call record and never in what the caller is shown.
   */
  readonly provider_body?: string;
}

/** Payload of `ai.request.completed` and `ai.request.failed` (the issue 3 contract). */
export interface CallPayload {
  readonly request_id: string;
  /** Null when the client named a concrete model (nothing was decided) and for cache hits. */
  readonly decision_id: string | null;
  readonly tenant: string;
  readonly api_key_id: string | null;
  /** The model that served (or last failed; the requested one when nothing was called). */
  readonly model: string;
  readonly provider: string | null;
  readonly deployment: string | null;
  readonly task_type: string;
  readonly complexity: string;
  readonly confidence: number | null;
  readonly stream: boolean;
  readonly cached: boolean;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  /**
   * What the budgets were charged, for the attempt that served: its whole answer, or for a stream
   * that ended early (the client left, the provider failed mid-way) the prompt and what was sent
   * before the end. 0 for cached calls and for calls that failed before sending anything.
   */
  readonly cost_usd: number;
  /** The whole request, in milliseconds. */
  readonly latency_ms: number;
  readonly attempts: readonly AttemptRecord[];
  readonly error_code?: string;
  readonly status?: number;
}

/** The answer of a request that carries an `Idempotency-Key`, to be stored with its call record. */
export interface KeptAnswer {
  readonly scope: IdempotencyScope;
  readonly answer: StoredAnswer;
}

/** Writes one event per call through the outbox; resolves once it is committed. */
export interface CallEvents {
  /**
   * With `kept`, the request's idempotent answer commits in the same transaction as its event: no
   * crash can leave a call recorded whose retry is refused for want of its answer.
   */
  record(payload: CallPayload, trace: { readonly correlationId: string; readonly traceparent: string }, kept?: KeptAnswer): Promise<void>;
  drain(): Promise<void>;
}

interface PendingRecord {
  readonly event: NewSystemEvent;
  readonly kept: KeptAnswer | undefined;
}

export interface CallEventsOptions {
  readonly db: Database;
  readonly idempotency: Pick<IdempotencyStore, 'complete'>;
  readonly onAppended: () => void;
  /**
   * How long a record keeps being retried, with backoff, while the database is away (a transient
   * error): the provider has answered, and the answer is not given without its record.
   */
  readonly retryWithinMs: number;
  readonly clock?: Pick<Clock, 'now' | 'sleep'>;
}

const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1_000;

export function createCallEvents(options: CallEventsOptions): CallEvents {
  const { db, idempotency, retryWithinMs } = options;
  const clock = options.clock ?? createSystemClock();
  // A retry after a lost connection cannot know whether the last commit landed: events already there
  // (same ids: an event's id is its call's request id) are skipped, and a stored answer is not stored again.
  const write = async (batch: readonly PendingRecord[], retry: boolean): Promise<unknown[]> => {
    const events = batch.map((item) => item.event);
    const kept = batch.flatMap((item) => (item.kept === undefined ? [] : [item.kept]));
    if (kept.length === 0) return appendEvents(db, events, { skipExisting: retry });
    return db.transaction(async (tx) => {
      const appended = await appendEvents(tx, events, { skipExisting: retry });
      for (const { scope, answer } of kept) await idempotency.complete(scope, answer, tx);
      return appended;
    });
  };
  // Calls finishing in the same turn of the loop share one INSERT; each still waits for its own commit.
  const batches = createGroupCommit<PendingRecord, unknown>({
    maxBatch: 500,
    write: async (batch) => {
      const giveUpAt = clock.now() + retryWithinMs;
      for (let attempt = 0; ; attempt++) {
        try {
          return await write(batch, attempt > 0);
        } catch (error) {
          const wait = Math.min(FIRST_RETRY_MS * 2 ** attempt, MAX_RETRY_MS);
          if (!isTransientDatabaseError(error) || clock.now() + wait > giveUpAt) throw error;
          await clock.sleep(wait);
        }
      }
    },
  });
  return {
    async record(payload, trace, kept) {
      await batches.submit({
        event: {
          event_id: payload.request_id,
          event_type: payload.error_code === undefined ? REQUEST_COMPLETED : REQUEST_FAILED,
          source_service: 'autonomous.ai-router',
          correlation_id: trace.correlationId,
          traceparent: trace.traceparent,
          // Keyed by the request's correlation id (the default), not by tenant: what reads these events
          // (usage sums, learning) does not depend on their order, and a consumer handles one message
          // per key at a time, so a tenant key made a busy tenant's calls count one row per statement.
          payload: payload as unknown as Record<string, unknown>,
        },
        kept,
      });
      options.onAppended();
    },
    drain: () => batches.drain(),
  };
}
