import type { Database } from '../../../platform/db/port.ts';
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

export function createCallEvents(options: {
  db: Database;
  idempotency: Pick<IdempotencyStore, 'complete'>;
  onAppended: () => void;
  retryAttempts: number;
}): CallEvents {
  const { db, idempotency } = options;
  const write = async (batch: readonly PendingRecord[]): Promise<unknown[]> => {
    const events = batch.map((item) => item.event);
    const kept = batch.flatMap((item) => (item.kept === undefined ? [] : [item.kept]));
    if (kept.length === 0) return appendEvents(db, events);
    return db.transaction(async (tx) => {
      const appended = await appendEvents(tx, events);
      for (const { scope, answer } of kept) await idempotency.complete(scope, answer, tx);
      return appended;
    });
  };
  // Calls finishing in the same turn of the loop share one INSERT; each still waits for its own commit.
  const batches = createGroupCommit<PendingRecord, unknown>({
    maxBatch: 500,
    write: async (batch) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await write(batch);
        } catch (error) {
          if (attempt >= options.retryAttempts || !isTransient(error)) throw error;
        }
      }
    },
  });
  return {
    async record(payload, trace, kept) {
      await batches.submit({
        event: {
          event_type: payload.error_code === undefined ? REQUEST_COMPLETED : REQUEST_FAILED,
          source_service: 'autonomous.ai-router',
          correlation_id: trace.correlationId,
          traceparent: trace.traceparent,
          // Per tenant in order: usage and budgets read a tenant's calls in the order they ended.
          key: payload.tenant,
          payload: payload as unknown as Record<string, unknown>,
        },
        kept,
      });
      options.onAppended();
    },
    drain: () => batches.drain(),
  };
}

/** Connection-level failures worth one more try; anything else (a constraint, bad SQL) is not. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === 'ECONNRESET' || code === 'ECONNREFUSED');
}
