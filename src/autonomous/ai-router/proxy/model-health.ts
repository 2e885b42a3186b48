import type { BreakerRegistry } from '../../../platform/resilience/breakers.ts';
import type { ModelSpec } from '../types.ts';

/*
 * Issue 3 contract (H3 → H1). Written by H1 while the file did not exist so that routing reads
 * real breaker states from the start; H3 owns this file and may replace the implementation.
 */

export interface ModelHealth {
  /** False when the model's breaker is open, or its provider's, or every deployment's. Cheap, no I/O. */
  available(model: ModelSpec): boolean;
}

/** Breaker names the proxy records calls under (platform.breakers). */
export const modelBreaker = (model: string): string => `ai.model.${model}`;
export const providerBreaker = (provider: string): string => `ai.provider.${provider}`;
export const deploymentBreaker = (model: string, deployment: string): string => `ai.deployment.${model}/${deployment}`;

/**
 * Health from the platform's breaker registry. Only `open` counts as down: a half-open breaker
 * lets its trial call through, and routing must send that call or the model never recovers.
 * A deployment is usable when neither its own breaker nor its provider's is open.
 */
export function createBreakerModelHealth(breakers: Pick<BreakerRegistry, 'state'>): ModelHealth {
  const open = (name: string): boolean => breakers.state(name) === 'open';
  return {
    available(model) {
      if (open(modelBreaker(model.model)) || open(providerBreaker(model.provider))) return false;
      for (const deployment of model.deployments) {
        if (!open(deploymentBreaker(model.model, deployment.id)) && !open(providerBreaker(deployment.provider))) return true;
      }
      return false;
    },
  };
}
