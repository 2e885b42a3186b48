import type { AiConfig } from '../config.ts';
import { BlocksError, isBlocksError } from '../../../platform/errors.ts';
import type { Tenancy } from '../../../platform/http/caller.ts';
import type { Logger } from '../../../platform/logger.ts';
import { isTransientDatabaseError } from '../../../platform/db/index.ts';
import type { BudgetGuard, BudgetHold } from '../budgets/budget-guard.ts';
import type { ModelCatalog } from '../catalog.ts';
import {
  ProviderError,
  type ChatCompletion,
  type ChatCompletionRequest,
  type ChatUsage,
  type ProviderAdapter,
} from '../providers/index.ts';
import type { Tokenizer } from '../tokenizer.ts';
import { runAttempts, verdictOf, type AttemptRunnerOptions, type StartedAttempt } from './attempts.ts';
import type { Balancer } from './balancer.ts';
import type { AttemptRecord, CallEvents, CallPayload, KeptAnswer } from './call-events.ts';
import { checkMessages, type ChatCompletionBodyType } from './chat-request.ts';
import type { DeploymentDirectory, ResolvedDeployment } from './deployments.ts';
import { clientClosed, databaseUnavailable, openAiErrorOf } from './errors.ts';
import type { BreakerGate } from './model-health.ts';
import { costOf, createPlanner, worstCaseCost, type CallPlan, type RankingDecider } from './plan.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { RecordGate } from './record-gate.ts';
import { cacheKeyOf, cacheTtlOf, type ResponseCache } from './response-cache.ts';
import { relayChunks, sse, type OpenStream, type StreamSink } from './stream-relay.ts';

export type { StreamSink } from './stream-relay.ts';

/** One call as the route hands it over. */
export interface ChatCallInput {
  /** Already checked against `ChatCompletionBody`. */
  readonly body: ChatCompletionBodyType;
  readonly caller: Tenancy;
  readonly trace: { readonly correlationId: string; readonly traceparent: string };
  /** The `x-blocks-cache-ttl` header. */
  readonly cacheTtlHeader: string | string[] | undefined;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /**
   * For a request carrying an `Idempotency-Key`: the answer as the client will get it, stored with
   * the call's record (same transaction) so a retry after any crash gets it. Not for streams.
   */
  readonly keep?: ((answer: ChatAnswer) => KeptAnswer) | undefined;
}

export interface ChatAnswer {
  readonly completion: ChatCompletion;
  readonly headers: Readonly<Record<string, string>>;
}

export interface CompletedChat extends ChatAnswer {
  /** The answer was stored for its `Idempotency-Key` with the call's record (`keep` was given). */
  readonly kept: boolean;
}

export interface ModelList {
  object: 'list';
  data: { id: string; object: 'model'; created: number; owned_by: string }[];
}

export interface ChatProxy {
  /**
   * A non-streaming completion, served from the cache when the request opted in and an equal
   * request of the tenant was answered; otherwise through the fallback chain. The call's event is
   * committed before this resolves.
   * @throws BlocksError for every failure, with the attempts made (see runAttempts).
   */
  complete(input: ChatCallInput): Promise<CompletedChat>;
  /**
   * A streamed completion. Failures before the first chunk fall back, then throw (the client
   * gets a problem document); after `sink.open` they end the stream with an SSE error event.
   * Once open, the call is charged for what was passed on, however it ends: the whole answer; or,
   * when the client goes away (the provider call is then cancelled) or the provider fails mid-way,
   * the prompt and the text sent until then (the provider's usage when it came, else our count).
   * The budget hold is settled with that cost and the call event carries the same figures.
   */
  stream(input: ChatCallInput, sink: StreamSink): Promise<void>;
  /** Enabled catalog models, routing policies and `auto`, as OpenAI lists models. */
  models(): ModelList;
}

export interface ChatProxyOptions {
  readonly ai: AiConfig;
  readonly catalog: () => ModelCatalog | null;
  readonly decider: RankingDecider;
  readonly tokenizer: Pick<Tokenizer, 'countPromptTokens' | 'countTokens'>;
  readonly directory: DeploymentDirectory;
  readonly balancer: Balancer;
  readonly gate: BreakerGate;
  readonly budgets: BudgetGuard;
  readonly cache: ResponseCache;
  readonly events: CallEvents;
  /** Asked before each provider call whether the call can be recorded; told how the proxy's writes went. */
  readonly records: RecordGate;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly now?: () => number;
}

class FirstChunkTimeout extends Error {}

/** Retry-After of a call refused because its record could not be written. */
const RECORD_RETRY_AFTER_S = 1;

/** What the model wrote in an answer, for our own count: its content and its tool calls' names and arguments. */
const answerTextOf = (message: ChatCompletion['choices'][number]['message']): string =>
  (message.content ?? '') + (message.tool_calls ?? []).map((call) => call.function.name + call.function.arguments).join('');

export function createChatProxy(options: ChatProxyOptions): ChatProxy {
  const { ai, tokenizer, events, records, metrics, logger } = options;
  const now = options.now ?? Date.now;
  const settings = ai.proxy;
  const plan = createPlanner(options);
  const warned = new Set<string>();
  const runner: AttemptRunnerOptions = {
    directory: options.directory,
    balancer: options.balancer,
    gate: options.gate,
    maxAttempts: settings.max_attempts,
    now,
    onSkipped(skipped, error) {
      // A deployment that cannot be called as configured is an operator's problem: say so once.
      const key = `${skipped.model}/${skipped.deployment}`;
      if (error === undefined || warned.has(key)) return;
      warned.add(key);
      logger.warn({ model: skipped.model, deployment: skipped.deployment, reason: skipped.reason }, 'AI deployment skipped');
    },
    onFailed(deployment, error) {
      if (error.kind !== 'auth') return;
      // Blocks' own key was refused: the operator's to fix. The caller was told only that; here is what the provider said.
      logger.error(
        {
          model: deployment.model.model,
          deployment: deployment.deployment.id,
          provider: deployment.provider,
          provider_status: error.providerStatus,
          provider_body: error.providerBody,
        },
        "AI provider refused Blocks' credentials",
      );
    },
  };

  const headersOf = (p: CallPlan, d: ResolvedDeployment, attempts: number): Record<string, string> => {
    const headers: Record<string, string> = {
      'x-blocks-model': d.model.model,
      'x-blocks-provider': d.provider,
      'x-blocks-attempts': String(attempts),
      'x-blocks-request-id': p.requestId,
    };
    if (p.decisionId !== null) headers['x-blocks-decision-id'] = p.decisionId;
    return headers;
  };

  const payloadOf = (
    p: CallPlan,
    input: ChatCallInput,
    startedAt: number,
    attempts: readonly AttemptRecord[],
    served: { model: string; provider: string | null; deployment: string | null },
    usage: { prompt: number; completion: number; cost: number },
    cached = false,
  ): CallPayload => ({
    request_id: p.requestId,
    decision_id: cached ? null : p.decisionId,
    tenant: input.caller.tenant,
    api_key_id: input.caller.apiKeyId,
    model: served.model,
    provider: served.provider,
    deployment: served.deployment,
    task_type: p.taskType,
    complexity: p.complexity,
    confidence: cached ? null : p.confidence,
    stream: input.body.stream === true,
    cached,
    prompt_tokens: usage.prompt,
    completion_tokens: usage.completion,
    cost_usd: usage.cost,
    latency_ms: Math.max(0, Math.round(now() - startedAt)),
    attempts,
  });

  const observe = (payload: CallPayload, outcome: string): void =>
    metrics.observe({
      model: payload.model,
      provider: payload.provider ?? 'none',
      outcome,
      durationMs: payload.latency_ms,
      costUsd: payload.cost_usd,
      promptTokens: payload.prompt_tokens,
      completionTokens: payload.completion_tokens,
    });

  const record = async (payload: CallPayload, input: ChatCallInput, outcome: string, kept?: KeptAnswer): Promise<void> => {
    observe(payload, outcome);
    try {
      await events.record(payload, input.trace, kept);
    } catch (error) {
      records.failed(error);
      throw error;
    }
    records.succeeded();
  };

  /** Records the failed call; never throws over the error being reported. */
  const recordFailure = async (
    p: CallPlan | undefined,
    input: ChatCallInput,
    startedAt: number,
    attempts: readonly AttemptRecord[],
    error: unknown,
  ): Promise<void> => {
    const failure = input.signal.aborted ? clientClosed() : isBlocksError(error) ? error : undefined;
    const code = failure?.code ?? 'INTERNAL';
    const status = failure?.status ?? 500;
    const lastAttempt = attempts.at(-1);
    const fallbackPlan: CallPlan = p ?? {
      requestId: crypto.randomUUID(),
      decisionId: null,
      confidence: null,
      taskType: input.body.blocks?.task_type ?? settings.default_task_type,
      complexity: input.body.blocks?.complexity ?? settings.default_complexity,
      candidates: [],
      promptTokens: 0,
      expectedOutputTokens: 0,
    };
    const served = {
      model: lastAttempt?.model ?? p?.candidates[0]?.model ?? input.body.model,
      provider: lastAttempt?.provider ?? null,
      deployment: lastAttempt?.deployment ?? null,
    };
    const payload = {
      ...payloadOf(fallbackPlan, input, startedAt, attempts, served, { prompt: 0, completion: 0, cost: 0 }),
      error_code: code,
      status,
    };
    // Refused because nothing can be written: counted, not written (it would fail, and slowly when the database hangs).
    if (code === 'DATABASE_UNAVAILABLE') {
      observe(payload, code);
      return;
    }
    try {
      await record(payload, input, code);
    } catch (recordError) {
      logger.error({ err: recordError, request_id: payload.request_id }, 'AI call event could not be written');
    }
  };

  /** Settles the hold with the payload's cost and records the call; a failure of either is logged, since the answer (or part of it) was delivered. */
  const charge = async (hold: BudgetHold, payload: CallPayload, input: ChatCallInput, outcome: string): Promise<void> => {
    try {
      await Promise.all([hold.settle(payload.cost_usd), record(payload, input, outcome)]);
    } catch (error) {
      logger.error({ err: error, request_id: payload.request_id }, 'AI call could not be recorded');
    }
  };

  const usageOf = (p: CallPlan, usage: ChatUsage | null | undefined, text: () => string): { prompt: number; completion: number } =>
    usage !== undefined && usage !== null
      ? { prompt: usage.prompt_tokens, completion: usage.completion_tokens }
      : // A provider that reports no usage is charged by our own count.
        { prompt: p.promptTokens, completion: tokenizer.countTokens(text()) };

  // A failed release must not replace the error being reported; the hold expires after hold_ttl anyway.
  const releaseQuietly = async (hold: BudgetHold | undefined): Promise<void> => {
    try {
      await hold?.release();
    } catch (error) {
      logger.error({ err: error }, 'AI budget hold could not be released; it expires after ai.budgets.hold_ttl');
    }
  };

  /**
   * Before any provider is paid: checks the call can be recorded, then holds its worst case on the
   * caller's budgets (which writes, so it checks again). A database that is away is a 503 with
   * Retry-After, not a call made blind.
   */
  const reserve = async (p: CallPlan, input: ChatCallInput): Promise<BudgetHold> => {
    await records.check();
    try {
      return await options.budgets.reserve(input.caller, worstCaseCost(p, input.body, settings.max_attempts));
    } catch (error) {
      records.failed(error);
      if (isTransientDatabaseError(error)) throw databaseUnavailable(1);
      throw error;
    }
  };

  const openStream = async (adapter: ProviderAdapter, request: ChatCompletionRequest, input: ChatCallInput, deadline: number) => {
    // Until the first chunk the request's deadline bounds the wait; after it, only the adapter's
    // idle timeout does (a long answer may stream for longer than request_timeout).
    const firstChunk = new AbortController();
    const timer = setTimeout(() => firstChunk.abort(new FirstChunkTimeout()), Math.max(0, deadline - now()));
    const signal = AbortSignal.any([input.signal, firstChunk.signal]);
    const iterator = adapter.stream(request, { signal })[Symbol.asyncIterator]();
    try {
      const first = await iterator.next();
      if (first.done === true) throw new ProviderError('bad_response', 'the provider ended its stream before the first chunk');
      return { iterator, first } satisfies OpenStream;
    } catch (error) {
      if (error instanceof FirstChunkTimeout) {
        throw new ProviderError('timeout', `no first chunk before the request's deadline (${settings.request_timeout} ms)`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    async complete(input) {
      const startedAt = now();
      const { body } = input;
      const { hasImages } = checkMessages(body.messages);
      const ttl = cacheTtlOf(body, input.cacheTtlHeader, settings.response_cache);
      const attempts: AttemptRecord[] = [];
      let p: CallPlan | undefined;
      let hold: BudgetHold | undefined;
      try {
        p = plan(body, input.caller, hasImages);
        const cacheKey = ttl > 0 ? cacheKeyOf(input.caller.tenant, body) : undefined;
        if (cacheKey !== undefined) {
          const hit = await options.cache.get(cacheKey);
          if (hit !== undefined) {
            const served = { model: hit.model, provider: hit.provider, deployment: hit.deployment };
            const answer: ChatAnswer = {
              completion: hit.completion,
              headers: {
                'x-blocks-model': hit.model,
                'x-blocks-provider': hit.provider,
                'x-blocks-attempts': '0',
                'x-blocks-request-id': p.requestId,
                'x-blocks-cache': 'hit',
              },
            };
            const kept = input.keep?.(answer);
            await record(payloadOf(p, input, startedAt, [], served, { prompt: 0, completion: 0, cost: 0 }, true), input, 'cached', kept);
            return { ...answer, kept: kept !== undefined };
          }
        }
        hold = await reserve(p, input);
        const deadline = startedAt + settings.request_timeout;
        const started = await runAttempts(runner, {
          plan: p,
          body,
          placement: ai.tenants[input.caller.tenant],
          deadline,
          signal: input.signal,
          attempts,
          start: (adapter, request) => adapter.complete(request, { signal: input.signal, deadline }),
        });
        started.finish('success');
        const d = started.deployment;
        const completion: ChatCompletion = { ...started.value, model: d.model.model };
        const tokens = usageOf(p, completion.usage, () => completion.choices.map((c) => answerTextOf(c.message)).join(''));
        const cost = costOf(d.model, tokens.prompt, tokens.completion);
        const served = { model: d.model.model, provider: d.provider, deployment: d.deployment.id };
        const budgetSettled = hold.settle(cost);
        hold = undefined;
        const headers = headersOf(p, d, attempts.length);
        const answer: ChatAnswer = { completion, headers: cacheKey === undefined ? headers : { ...headers, 'x-blocks-cache': 'miss' } };
        const kept = input.keep?.(answer);
        await Promise.all([
          budgetSettled,
          record(payloadOf(p, input, startedAt, attempts, served, { ...tokens, cost }), input, 'success', kept),
        ]);
        if (cacheKey !== undefined) {
          options.cache
            .set(cacheKey, { completion, ...served }, ttl)
            .catch((error: unknown) => logger.warn({ err: error }, 'AI response could not be cached'));
        }
        return { ...answer, kept: kept !== undefined };
      } catch (thrown) {
        // The database went away and stayed away past record_wait: the answer is not given without its record.
        const error = isTransientDatabaseError(thrown) ? databaseUnavailable(RECORD_RETRY_AFTER_S, attempts.length > 0) : thrown;
        await releaseQuietly(hold);
        await recordFailure(p, input, startedAt, attempts, error);
        throw input.signal.aborted ? clientClosed() : error;
      }
    },

    async stream(input, sink) {
      const startedAt = now();
      const { body } = input;
      const { hasImages } = checkMessages(body.messages);
      const attempts: AttemptRecord[] = [];
      let p: CallPlan | undefined;
      let hold: BudgetHold | undefined;
      let started: StartedAttempt<OpenStream>;
      try {
        p = plan(body, input.caller, hasImages);
        hold = await reserve(p, input);
        const deadline = startedAt + settings.request_timeout;
        started = await runAttempts(runner, {
          plan: p,
          body,
          placement: ai.tenants[input.caller.tenant],
          deadline,
          signal: input.signal,
          attempts,
          start: (adapter, request) => openStream(adapter, request, input, deadline),
        });
      } catch (error) {
        await releaseQuietly(hold);
        await recordFailure(p, input, startedAt, attempts, error);
        throw input.signal.aborted ? clientClosed() : error;
      }

      const d = started.deployment;
      const model = d.model.model;
      sink.open(headersOf(p, d, attempts.length + 1));
      const relayed = await relayChunks({
        stream: started.value,
        sink,
        signal: input.signal,
        model,
        includeUsage: body.stream_options?.include_usage === true,
      });
      // What was passed on is charged however the stream ended; the provider was paid for it too.
      const tokens = usageOf(p, relayed.usage, () => relayed.text);
      const cost = costOf(d.model, tokens.prompt, tokens.completion);
      const served = { model, provider: d.provider, deployment: d.deployment.id };
      if (relayed.complete) {
        started.finish('success');
        await charge(hold, payloadOf(p, input, startedAt, attempts, served, { ...tokens, cost }), input, 'success');
        await sink.write('data: [DONE]\n\n');
        sink.end();
        return;
      }

      const clientLeft = input.signal.aborted;
      const providerError = !clientLeft && relayed.error instanceof ProviderError ? relayed.error : undefined;
      // A client leaving says nothing about the deployment: it counts on no breaker.
      started.finish(providerError === undefined ? 'none' : verdictOf(providerError.kind), providerError);
      if (!clientLeft && providerError === undefined) logger.error({ err: relayed.error }, 'AI stream failed');
      const failure = clientLeft
        ? clientClosed()
        : isBlocksError(relayed.error)
          ? relayed.error
          : new BlocksError('INTERNAL', 500, 'The stream failed.');
      const payload = {
        ...payloadOf(p, input, startedAt, attempts, served, { ...tokens, cost }),
        error_code: failure.code,
        status: failure.status,
      };
      await charge(hold, payload, input, failure.code);
      if (!clientLeft) await sink.write(sse({ error: openAiErrorOf(failure.status, failure.code, failure.detail, null) }));
      sink.end();
    },

    models() {
      const catalog = options.catalog();
      const models = (catalog?.models ?? []).map((m) => ({ id: m.model, object: 'model' as const, created: 0, owned_by: m.provider }));
      const routed = ['auto', ...Object.keys(ai.policies)].map((id) => ({ id, object: 'model' as const, created: 0, owned_by: 'blocks' }));
      return { object: 'list', data: [...routed, ...models] };
    },
  };
}
