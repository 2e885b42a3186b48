import { BlocksError } from '../../../platform/errors.ts';
import { ProviderError, type ChatCompletionRequest, type ProviderAdapter, type ProviderErrorKind } from '../providers/index.ts';
import type { Balancer, TenantPlacement } from './balancer.ts';
import type { AttemptRecord } from './call-events.ts';
import { upstreamRequest, type ChatCompletionBodyType } from './chat-request.ts';
import { isResolved, type DeploymentDirectory, type ResolvedDeployment } from './deployments.ts';
import { modelUnavailable, type SkippedDeployment } from './errors.ts';
import type { BreakerGate, BreakerVerdict } from './model-health.ts';
import type { CallPlan } from './plan.ts';

export interface AttemptRunnerOptions {
  readonly directory: DeploymentDirectory;
  readonly balancer: Balancer;
  readonly gate: BreakerGate;
  readonly maxAttempts: number;
  readonly now: () => number;
  readonly onSkipped?: (skipped: SkippedDeployment, error?: unknown) => void;
  /** Told about every provider call that failed, before the chain moves on. */
  readonly onFailed?: (deployment: ResolvedDeployment, error: ProviderError) => void;
}

/** One request's walk through the fallback chain. */
export interface AttemptCall<T> {
  readonly plan: CallPlan;
  readonly body: ChatCompletionBodyType;
  readonly placement: TenantPlacement | undefined;
  /** Absolute time (epoch ms) after which no attempt starts. */
  readonly deadline: number;
  readonly signal: AbortSignal;
  /** The caller's list, so that it survives a throw: every call ended is appended. */
  readonly attempts: AttemptRecord[];
  readonly start: StartAttempt<T>;
}

/** A provider call under way on one deployment, handed to whoever finishes it. */
export interface StartedAttempt<T> {
  readonly value: T;
  readonly deployment: ResolvedDeployment;
  readonly startedAt: number;
  /** Ends the attempt: counts it on the breakers, frees its load-balancer slot, records it (unless `none`). */
  finish(verdict: BreakerVerdict, error?: ProviderError): void;
}

/** Starts one provider call; resolves once the deployment has proved it is answering. */
export type StartAttempt<T> = (adapter: ProviderAdapter, request: ChatCompletionRequest, deployment: ResolvedDeployment) => Promise<T>;

/**
 * Failures that are one deployment's, not its model's or provider's: a throttled key (rate_limited),
 * a refused key (auth), an address the egress policy refuses (egress_refused). The model's other
 * deployments keep serving.
 */
const DEPLOYMENT_FAILURES: ReadonlySet<ProviderErrorKind> = new Set(['rate_limited', 'auth', 'egress_refused']);

/** How the breakers count a provider failure. */
export const verdictOf = (kind: ProviderErrorKind): BreakerVerdict =>
  kind === 'client' ? 'success' : DEPLOYMENT_FAILURES.has(kind) ? 'deployment-failure' : 'failure';

export const attemptRecord = (d: ResolvedDeployment, startedAt: number, at: number, error?: ProviderError): AttemptRecord => ({
  model: d.model.model,
  provider: d.provider,
  deployment: d.deployment.id,
  outcome: error === undefined ? 'success' : error.code,
  kind: error === undefined ? null : error.kind,
  latency_ms: Math.max(0, Math.round(at - startedAt)),
  ...(error?.providerBody === undefined ? {} : { provider_body: error.providerBody }),
});

/** The attempts as a caller is shown them: without what the providers said (the call record keeps that). */
const shownAttempts = (attempts: readonly AttemptRecord[]): AttemptRecord[] => attempts.map(({ provider_body: _said, ...shown }) => shown);

/**
 * Runs the fallback chain: each candidate model in plan order, each of its deployments in the
 * balancer's order, skipping deployments whose breaker is open, whose key cannot be read or that
 * the tenant may not use, and never calling one deployment twice. A failure of kind `client`
 * ends the chain (another deployment would refuse the same request); any other moves on, until
 * `maxAttempts` calls were made or the deadline passed. Every call ended is appended to
 * `call.attempts`, including the one returned once it finishes.
 *
 * @throws BlocksError the last provider error's code and status with every attempt listed; a
 *   PROVIDER_TIMEOUT when the deadline passed first; MODEL_UNAVAILABLE (503) when nothing could be
 *   called at all; or the caller's abort reason.
 */
export async function runAttempts<T>(options: AttemptRunnerOptions, call: AttemptCall<T>): Promise<StartedAttempt<T>> {
  const { directory, balancer, gate, maxAttempts, now } = options;
  const { plan, body, placement, deadline, signal, attempts, start } = call;
  const skipped: SkippedDeployment[] = [];
  const skip = (d: { model: { model: string }; deployment: { id: string } }, reason: string, error?: unknown): void => {
    const entry = { model: d.model.model, deployment: d.deployment.id, reason };
    skipped.push(entry);
    options.onSkipped?.(entry, error);
  };
  let last: ProviderError | undefined;

  for (const model of plan.candidates) {
    const slots = directory.slotsOf(model);
    const callable: ResolvedDeployment[] = [];
    for (const slot of slots) {
      if (isResolved(slot)) callable.push(slot);
      else skip(slot, slot.reason);
    }
    const ordered = balancer.order(callable, placement);
    if (ordered.length < callable.length) {
      for (const d of callable) if (!ordered.includes(d)) skip(d, 'not allowed for the tenant');
    }
    for (const d of ordered) {
      if (attempts.length >= maxAttempts) throw exhausted(last, attempts, skipped);
      if (now() >= deadline) throw deadlinePassed(attempts, skipped, last);
      if (!gate.usable(d.breakers)) {
        skip(d, 'circuit breaker open');
        continue;
      }
      let adapter: ProviderAdapter;
      try {
        adapter = directory.adapterFor(d);
      } catch (error) {
        skip(d, (error as Error).message, error);
        continue;
      }
      gate.begin(d.breakers);
      const release = balancer.acquire(d);
      const startedAt = now();
      let finished = false;
      const finish = (verdict: BreakerVerdict, error?: ProviderError): void => {
        if (finished) return;
        finished = true;
        release();
        gate.record(d.breakers, verdict);
        if (verdict !== 'none') attempts.push(attemptRecord(d, startedAt, now(), error));
      };
      try {
        const value = await start(adapter, upstreamRequest(body, d.upstreamModel), d);
        return { value, deployment: d, startedAt, finish };
      } catch (error) {
        if (signal.aborted || !(error instanceof ProviderError)) {
          finish('none');
          throw error;
        }
        finish(verdictOf(error.kind), error);
        options.onFailed?.(d, error);
        if (error.kind === 'rate_limited' && error.retryAfterMs !== undefined) balancer.coolDown(d, error.retryAfterMs);
        last = error;
        if (error.kind === 'client') throw withAttempts(error, attempts, skipped, error.detail);
      }
    }
  }
  throw exhausted(last, attempts, skipped);
}

function exhausted(
  last: ProviderError | undefined,
  attempts: readonly AttemptRecord[],
  skipped: readonly SkippedDeployment[],
): BlocksError {
  if (last === undefined) return modelUnavailable(skipped, shownAttempts(attempts));
  const detail =
    attempts.length === 1
      ? last.detail
      : `All ${attempts.length} attempts failed (${attempts.map((a) => `${a.model}/${a.deployment}: ${a.outcome}`).join(', ')}); last: ${last.detail}`;
  return withAttempts(last, attempts, skipped, detail);
}

function deadlinePassed(
  attempts: readonly AttemptRecord[],
  skipped: readonly SkippedDeployment[],
  last: ProviderError | undefined,
): BlocksError {
  const error = new ProviderError(
    'timeout',
    `The request's deadline passed after ${attempts.length} attempt(s)${last === undefined ? '' : `; last: ${last.detail}`}`,
  );
  return withAttempts(error, attempts, skipped, error.detail);
}

/** The error a client gets: the provider error's code and status, with every attempt listed. */
export function withAttempts(
  error: ProviderError,
  attempts: readonly AttemptRecord[],
  skipped: readonly SkippedDeployment[],
  detail: string,
): BlocksError {
  return new BlocksError(error.code, error.status, detail, {
    cause: error,
    extensions: { ...error.extensions, attempts: shownAttempts(attempts), ...(skipped.length > 0 ? { skipped: [...skipped] } : {}) },
  });
}
