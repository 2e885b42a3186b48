import type { BreakerRegistry } from '../../../platform/resilience/breakers.ts';
import type { Deployment, ModelSpec } from '../types.ts';

/** What the decider asks before it ranks a model: may it be called now? */
export interface ModelHealth {
  /** False when the model's breaker is open, or its provider's, or every deployment's. Cheap, no I/O. */
  available(model: ModelSpec): boolean;
}

export const modelBreaker = (model: string): string => `ai.model.${model}`;
export const providerBreaker = (provider: string): string => `ai.provider.${provider}`;
export const deploymentBreaker = (model: string, deployment: string): string => `ai.deployment.${model}/${deployment}`;

/** The three breakers one attempt answers to. */
export interface AttemptBreakers {
  readonly model: string;
  readonly provider: string;
  readonly deployment: string;
}

export const breakersOf = (model: ModelSpec, deployment: Deployment): AttemptBreakers => ({
  model: modelBreaker(model.model),
  provider: providerBreaker(deployment.provider),
  deployment: deploymentBreaker(model.model, deployment.id),
});

/** How an attempt ended, as the breakers count it. */
export type BreakerVerdict = 'success' | 'failure' | 'deployment-failure' | 'none';

/**
 * A gate over `platform.breakers` for provider calls that may last minutes (streams).
 *
 * cockatiel's `execute` wraps one promise; an attempt is recorded once its outcome is known,
 * by executing an already settled promise, so a stream does not hold the breaker for its
 * whole length. What `execute` would do at call time (keep all but one trial call off a
 * recovering dependency) the gate does itself: a breaker past its recovery timeout lets one
 * attempt through and stays shut to others until that attempt is recorded. The breaker names
 * are the proxy's alone, so this process's bookkeeping is the whole truth for them.
 */
export interface BreakerGate extends ModelHealth {
  /** Whether an attempt on these breakers may start now. */
  usable(breakers: AttemptBreakers): boolean;
  /**
   * Marks the attempt as started; a recovering breaker among them is then on trial until
   * `record` runs. Call only after `usable` said yes, in the same tick.
   */
  begin(breakers: AttemptBreakers): void;
  /**
   * Counts the attempt's outcome. `failure` counts on all three; `deployment-failure` (one key
   * throttled or refused, one address refused by the egress policy: not the model) only on the
   * deployment; `none` (the client went away) counts nowhere but ends any trial.
   */
  record(breakers: AttemptBreakers, verdict: BreakerVerdict): void;
}

export function createBreakerGate(registry: BreakerRegistry): BreakerGate {
  const trials = new Set<string>();
  const open = (name: string): boolean => {
    const state = registry.state(name);
    return state === 'open' || (state === 'half-open' && trials.has(name));
  };
  const usable = (b: AttemptBreakers): boolean => !open(b.model) && !open(b.provider) && !open(b.deployment);
  const count = (name: string, ok: boolean): void => {
    trials.delete(name);
    // Rejections are the point (a failure counted) or a breaker that opened meanwhile (a late outcome, ignored).
    registry.execute(name, () => (ok ? undefined : Promise.reject(new Error('provider attempt failed')))).catch(() => undefined);
  };
  return {
    usable,
    available(model) {
      if (open(modelBreaker(model.model)) || open(providerBreaker(model.provider))) return false;
      return model.deployments.some((d) => !open(deploymentBreaker(model.model, d.id)) && !open(providerBreaker(d.provider)));
    },
    begin(b) {
      for (const name of [b.model, b.provider, b.deployment]) if (registry.state(name) === 'half-open') trials.add(name);
    },
    record(b, verdict) {
      if (verdict === 'none') {
        for (const name of [b.model, b.provider, b.deployment]) trials.delete(name);
        return;
      }
      const ok = verdict === 'success';
      count(b.deployment, ok);
      if (verdict === 'deployment-failure') {
        trials.delete(b.model);
        trials.delete(b.provider);
        return;
      }
      count(b.model, ok);
      count(b.provider, ok);
    },
  };
}

/**
 * Health read from breaker states alone, for a decider built without the proxy's gate: only
 * `open` counts as down, so a half-open breaker's trial call is still routed.
 */
export function createBreakerModelHealth(breakers: Pick<BreakerRegistry, 'state'>): ModelHealth {
  const open = (name: string): boolean => breakers.state(name) === 'open';
  return {
    available(model) {
      if (open(modelBreaker(model.model)) || open(providerBreaker(model.provider))) return false;
      return model.deployments.some((d) => !open(deploymentBreaker(model.model, d.id)) && !open(providerBreaker(d.provider)));
    },
  };
}
