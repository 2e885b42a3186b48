import type { Platform } from '../../../platform/platform.ts';
import type { Subscription } from '../../../platform/bus/port.ts';
import { isSystemEvent } from '../../../platform/events/index.ts';
import { createGroupCommit } from '../../../platform/group-commit.ts';
import { countCalls, type CountedCall } from './usage-store.ts';

/** Durable consumer name: replicas share the work, each event counts once. */
export const USAGE_CONSUMER = 'ai-usage-daily';
/** `ai.request.completed` and `ai.request.failed`. */
export const CALL_EVENTS = 'ai.request.*';

/** Deliveries handled at once: they are counted in one statement, so more in flight means fewer writes. */
const CONCURRENCY = 64;

export interface UsageCounter {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const count = (payload: Record<string, unknown>, field: string, eventId: string): number => {
  const value = payload[field] ?? 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new Error(`event ${eventId}: ${field} must be a number >= 0`);
  return value;
};

/**
 * The call an `ai.request.*` event describes. Throws for anything else, so the bus retries it and
 * finally dead-letters it rather than counting garbage.
 */
export function callOf(data: unknown): CountedCall | null {
  if (!isSystemEvent(data)) throw new Error('not a SystemEvent');
  const failed = data.event_type === 'ai.request.failed';
  if (!failed && data.event_type !== 'ai.request.completed') return null;
  const p = data.payload;
  const id = data.event_id;
  if (typeof p.tenant !== 'string' || p.tenant === '') throw new Error(`event ${id} has no tenant`);
  if (p.api_key_id !== null && p.api_key_id !== undefined && typeof p.api_key_id !== 'string')
    throw new Error(`event ${id}: api_key_id must be a string or null`);
  // A call that failed before any model was tried is still a request of the tenant's.
  const model = typeof p.model === 'string' && p.model !== '' ? p.model : failed && p.model == null ? '(none)' : undefined;
  if (model === undefined) throw new Error(`event ${id} has no model`);
  return {
    event_id: id,
    tenant: p.tenant,
    api_key_id: p.api_key_id ?? null,
    model,
    day: data.timestamp.slice(0, 10),
    failed,
    cached: p.cached === true,
    prompt_tokens: count(p, 'prompt_tokens', id),
    completion_tokens: count(p, 'completion_tokens', id),
    // What the proxy settled the budgets with: a failed call costs something only when part of it
    // was delivered (a stream the client left or the provider cut), and then its tokens count too.
    cost_usd: count(p, 'cost_usd', id),
  };
}

/**
 * Counts proxied calls per tenant, API key, model and UTC day into `ai_usage_daily`. Deliveries that
 * arrive together go into one statement with their inbox rows, so a redelivered event counts once;
 * each is acked only after its batch committed.
 */
export function createUsageCounter(platform: Pick<Platform, 'bus' | 'db' | 'logger'>): UsageCounter {
  const { bus, db, logger } = platform;
  let subscription: Subscription | undefined;
  const batches = createGroupCommit<CountedCall, boolean>({
    maxBatch: 500,
    write: async (calls) => {
      const fresh = await countCalls(db, USAGE_CONSUMER, calls);
      return calls.map((call) => fresh.has(call.event_id));
    },
  });
  return {
    async start() {
      subscription = await bus.subscribe({ consumer: USAGE_CONSUMER, subject: CALL_EVENTS, concurrency: CONCURRENCY }, async (delivery) => {
        const call = callOf(delivery.data);
        if (call === null) return;
        const counted = await batches.submit(call);
        if (!counted) logger.debug({ event_id: call.event_id }, 'AI call already counted');
      });
    },
    async stop() {
      await subscription?.stop();
      subscription = undefined;
      await batches.drain();
    },
  };
}
