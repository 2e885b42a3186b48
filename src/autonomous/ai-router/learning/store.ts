import type { Queryable } from '../../../platform/db/port.ts';
import type { Complexity } from '../types.ts';
import {
  attemptSuccess,
  REQUEST_COMPLETED,
  REQUEST_FAILED,
  type CallAttempt,
  type CallEvent,
  type RecordedOutcome,
} from './observations.ts';

/** Subject of the routing decision event (owned by the router's service; repeated here so learning needs no import of it). */
const ROUTE_DECIDED = 'ai.route.decided';

/** A decision as feedback needs it: whose it is and what it chose. */
export interface DecisionRecord {
  readonly tenant: string;
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly confidence: number | null;
}

/**
 * Finds a decision by id among the events that carry one: a routing decision (`ai.route.decided`,
 * the model is its `selected_model`) or a proxied call (`ai.request.*`, the model that served it).
 * Null when no such event is stored (never made, or pruned by event retention).
 */
export async function findDecision(db: Queryable, decisionId: string): Promise<DecisionRecord | null> {
  // Literal event types, the same as events_ai_decision_id_idx's predicate, so any plan can use that index.
  const { rows } = await db.query<{ event_type: string; payload: Record<string, unknown> }>(
    `SELECT event_type, payload FROM events
     WHERE payload ->> 'decision_id' = $1 AND event_type IN ('${ROUTE_DECIDED}', '${REQUEST_COMPLETED}', '${REQUEST_FAILED}')
     ORDER BY (event_type = '${REQUEST_COMPLETED}') DESC, sequence DESC
     LIMIT 1`,
    [decisionId],
  );
  const row = rows[0];
  if (row === undefined) return null;
  const p = row.payload;
  const model = row.event_type === ROUTE_DECIDED ? p.selected_model : p.model;
  if (typeof model !== 'string' || typeof p.task_type !== 'string' || typeof p.complexity !== 'string') return null;
  return {
    // Decisions recorded before events carried a tenant were all made for the default tenant.
    tenant: typeof p.tenant === 'string' ? p.tenant : 'default',
    model,
    task_type: p.task_type,
    complexity: p.complexity as Complexity,
    confidence: typeof p.confidence === 'number' ? p.confidence : null,
  };
}

interface OutcomeRow {
  id: string;
  decision_id: string;
  source: 'feedback';
  tenant: string;
  model: string;
  task_type: string;
  complexity: Complexity;
  success: boolean;
  quality_score: number | null;
  latency_ms: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cost_usd: string | number | null;
  confidence: number | null;
  recorded_at: Date | string;
}

const FEEDBACK_COLUMNS =
  'id, decision_id, source, tenant, model, task_type, complexity, success, quality_score, latency_ms, ' +
  'prompt_tokens, completion_tokens, cost_usd, confidence, recorded_at';

/**
 * Inserts a feedback outcome; null when the decision already has one. The unique (decision_id,
 * source) constraint decides between concurrent inserts: the loser waits for the winner's commit
 * and inserts nothing.
 */
export async function insertFeedback(tx: Queryable, outcome: Omit<RecordedOutcome, 'recorded_at'>): Promise<RecordedOutcome | null> {
  const { rows } = await tx.query<OutcomeRow>(
    `INSERT INTO ai_outcomes (${FEEDBACK_COLUMNS})
     VALUES ($1, $2, 'feedback', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())
     ON CONFLICT (decision_id, source) DO NOTHING
     RETURNING ${FEEDBACK_COLUMNS}`,
    [
      outcome.id,
      outcome.decision_id,
      outcome.tenant,
      outcome.model,
      outcome.task_type,
      outcome.complexity,
      outcome.success,
      outcome.quality_score,
      outcome.latency_ms,
      outcome.prompt_tokens,
      outcome.completion_tokens,
      outcome.cost_usd,
      outcome.confidence,
    ],
  );
  const row = rows[0];
  if (row === undefined) return null;
  return {
    ...row,
    cost_usd: row.cost_usd === null ? null : Number(row.cost_usd),
    recorded_at: new Date(row.recorded_at).toISOString(),
  };
}

/** A proxied request's outcome as stored: about the decided model (its first attempt), with the whole request's figures. */
export interface ProxyOutcome {
  readonly event_id: string;
  readonly id: string;
  readonly request_id: string;
  readonly decision_id: string | null;
  readonly tenant: string;
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly success: boolean | null;
  readonly latency_ms: number | null;
  readonly prompt_tokens: number | null;
  readonly completion_tokens: number | null;
  readonly cost_usd: number | null;
  readonly confidence: number | null;
  readonly attempts: readonly CallAttempt[];
  readonly recorded_at: string;
}

/**
 * The row a proxied call leaves, or null when it says nothing about a model: a cached answer, or
 * a request refused before any provider was called.
 */
export function proxyOutcomeOf(event: CallEvent, id: string): ProxyOutcome | null {
  const first = event.attempts[0];
  if (event.cached || first === undefined) return null;
  const success = attemptSuccess(first);
  return {
    event_id: event.event_id,
    id,
    request_id: event.request_id,
    decision_id: event.decision_id,
    tenant: event.tenant,
    // Confidence was about the decided model, which is the one tried first.
    model: first.model,
    task_type: event.task_type,
    complexity: event.complexity,
    success: success === null ? null : success === 1,
    latency_ms: event.latency_ms,
    prompt_tokens: event.prompt_tokens,
    completion_tokens: event.completion_tokens,
    cost_usd: event.cost_usd,
    confidence: event.confidence,
    attempts: event.attempts,
    recorded_at: new Date(Number.isFinite(event.at) ? event.at : Date.now()).toISOString(),
  };
}

/**
 * Stores a batch of proxied outcomes and records their events in `consumer`'s inbox, in one
 * statement (all or nothing). Events already in the inbox, or twice in the batch, are stored once.
 * `handled` lists events to mark processed without a row (cached calls and the like).
 * Returns the event ids processed now.
 */
export async function storeProxyOutcomes(
  db: Queryable,
  consumer: string,
  outcomes: readonly ProxyOutcome[],
  handled: readonly string[],
): Promise<Set<string>> {
  if (outcomes.length === 0 && handled.length === 0) return new Set();
  const { rows } = await db.query<{ event_id: string }>(
    `WITH batch AS (
       SELECT DISTINCT ON (event_id) *
       FROM jsonb_to_recordset($2::jsonb) AS r(event_id text, id uuid, request_id uuid, decision_id uuid, tenant text,
            model text, task_type text, complexity text, success boolean, latency_ms double precision,
            prompt_tokens integer, completion_tokens integer, cost_usd numeric, confidence double precision,
            attempts jsonb, recorded_at timestamptz)
     ), fresh AS (
       INSERT INTO inbox (consumer, event_id)
       SELECT $1, event_id FROM batch UNION SELECT $1, unnest($3::text[])
       ON CONFLICT DO NOTHING
       RETURNING event_id
     ), stored AS (
       INSERT INTO ai_outcomes (id, decision_id, request_id, source, tenant, model, task_type, complexity, success,
                                latency_ms, prompt_tokens, completion_tokens, cost_usd, confidence, attempts, recorded_at)
       SELECT b.id, b.decision_id, b.request_id, 'proxy', b.tenant, b.model, b.task_type, b.complexity, b.success,
              b.latency_ms, b.prompt_tokens, b.completion_tokens, b.cost_usd, b.confidence, b.attempts, b.recorded_at
       FROM batch b JOIN fresh f ON f.event_id = b.event_id
       -- A request already stored under another event id (a re-emitted event) stays as first stored.
       ON CONFLICT DO NOTHING
     )
     SELECT event_id FROM fresh`,
    [consumer, JSON.stringify(outcomes), [...handled]],
  );
  return new Set(rows.map((row) => row.event_id));
}

/** A stored outcome as warm-up replays it. */
export interface StoredOutcome {
  readonly source: 'feedback' | 'proxy';
  /** Whose estimates it goes back into. */
  readonly tenant: string;
  readonly model: string;
  readonly task_type: string;
  readonly complexity: Complexity;
  readonly success: boolean | null;
  readonly quality_score: number | null;
  readonly latency_ms: number | null;
  readonly attempts: readonly CallAttempt[] | null;
  readonly recorded_at: number;
}

/** Which outcomes to read back and how many at a time. */
export interface OutcomeReadOptions {
  /** Only outcomes recorded at or after this. */
  readonly since: Date;
  /** At most this many, the newest. */
  readonly limit: number;
  /** Rows read per statement. */
  readonly pageSize: number;
}

/** Where a page ended: the text of its last `recorded_at` (microseconds kept, unlike a Date) and its id. */
interface Cursor {
  readonly at: string;
  readonly id: string;
}

type OutcomePageRow = Omit<StoredOutcome, 'recorded_at'> & { recorded_at: Date | string; cursor_at: string; id: string };
const OUTCOME_PAGE_COLUMNS =
  'source, tenant, model, task_type, complexity, success, quality_score, latency_ms, attempts, recorded_at, recorded_at::text AS cursor_at, id';
const FIRST_OUTCOME_PAGE = `SELECT ${OUTCOME_PAGE_COLUMNS} FROM ai_outcomes
  WHERE recorded_at >= $1::timestamptz ORDER BY recorded_at, id LIMIT $2`;
// recorded_at >= the cursor's, spelled out beside the row comparison, lets the recorded_at index start where the last page ended.
const NEXT_OUTCOME_PAGE = `SELECT ${OUTCOME_PAGE_COLUMNS} FROM ai_outcomes
  WHERE recorded_at >= $1::timestamptz AND (recorded_at, id) > ($1::timestamptz, $2::uuid) ORDER BY recorded_at, id LIMIT $3`;

/**
 * Reads the outcomes recorded since `since`, at most the newest `limit`, oldest first (ties by
 * id), handing them to `visit` one page of at most `pageSize` rows at a time; the next page is
 * read once `visit` returns. Neither this process nor the database ever holds more than a page
 * (PGlite's WASM memory grows to fit the largest result it was asked for and never shrinks), and
 * each page is read by keyset on (recorded_at, id), so a page costs the same however far in it is.
 * Returns how many outcomes were visited.
 */
export async function readOutcomesSince(
  db: Queryable,
  options: OutcomeReadOptions,
  visit: (page: readonly StoredOutcome[]) => void | Promise<void>,
): Promise<number> {
  if (!(options.pageSize >= 1)) throw new Error('pageSize must be >= 1');
  if (options.limit < 1) return 0;
  // Everything after the (limit + 1)-th newest outcome is the newest `limit`; when there are
  // fewer, everything since `since` is.
  const { rows: bound } = await db.query<Cursor>(
    `SELECT recorded_at::text AS at, id FROM ai_outcomes WHERE recorded_at >= $1
     ORDER BY recorded_at DESC, id DESC OFFSET $2 LIMIT 1`,
    [options.since.toISOString(), options.limit],
  );
  let after: Cursor | undefined = bound[0];
  let visited = 0;
  for (;;) {
    const { rows } = await db.query<OutcomePageRow>(
      after === undefined ? FIRST_OUTCOME_PAGE : NEXT_OUTCOME_PAGE,
      after === undefined ? [options.since.toISOString(), options.pageSize] : [after.at, after.id, options.pageSize],
    );
    const last = rows.at(-1);
    if (last === undefined) return visited;
    after = { at: last.cursor_at, id: last.id };
    visited += rows.length;
    await visit(rows.map(({ cursor_at: _cursor, id: _id, ...row }) => ({ ...row, recorded_at: new Date(row.recorded_at).getTime() })));
    if (rows.length < options.pageSize) return visited;
  }
}

/** Per confidence bin: how many outcomes, their summed confidence and successes, and summed squared error. */
export interface CalibrationBinSums {
  readonly bin: number;
  readonly n: number;
  readonly confidence: number;
  readonly successes: number;
  readonly squaredError: number;
}

/**
 * Sums per equal-width confidence bin over the tenant's outcomes since `since` that have both a
 * confidence and a success (`source` null for both sources). Aggregated in the database so the
 * window's size costs the server nothing.
 */
export async function calibrationSums(
  db: Queryable,
  args: { tenant: string; since: Date; bins: number; source: 'feedback' | 'proxy' | null },
): Promise<CalibrationBinSums[]> {
  const { rows } = await db.query<{
    bin: number | string;
    n: string | number;
    confidence: number | string;
    successes: number | string;
    squared_error: number | string;
  }>(
    `SELECT LEAST(floor(confidence * $3)::int, $3 - 1) AS bin, count(*) AS n,
            sum(confidence) AS confidence, sum(success::int) AS successes,
            sum(power(confidence - success::int, 2)) AS squared_error
     FROM ai_outcomes
     WHERE tenant = $1 AND recorded_at >= $2 AND confidence IS NOT NULL AND success IS NOT NULL
       AND ($4::text IS NULL OR source = $4)
     GROUP BY 1 ORDER BY 1`,
    [args.tenant, args.since.toISOString(), args.bins, args.source],
  );
  return rows.map((row) => ({
    bin: Number(row.bin),
    n: Number(row.n),
    confidence: Number(row.confidence),
    successes: Number(row.successes),
    squaredError: Number(row.squared_error),
  }));
}

/** Rows deleted per statement, so a large backlog never holds locks for long. */
const PRUNE_BATCH = 5_000;

/** Deletes outcomes recorded before `before`, in batches; returns how many. Safe from several replicas at once. */
export async function pruneOutcomes(db: Queryable, before: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(
      'DELETE FROM ai_outcomes WHERE id IN (SELECT id FROM ai_outcomes WHERE recorded_at < $1 LIMIT $2)',
      [before.toISOString(), PRUNE_BATCH],
    );
    total += rowCount;
    if (rowCount < PRUNE_BATCH) return total;
  }
}
