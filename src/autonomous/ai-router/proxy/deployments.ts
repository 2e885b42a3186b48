import { readFileSync } from 'node:fs';
import type { Config } from '../../../platform/config/schema.ts';
import type { EgressPolicy } from '../../../platform/net/egress.ts';
import { createAnthropicAdapter, createOpenAiCompatibleAdapter, type ProviderAdapter } from '../providers/index.ts';
import type { Deployment, ModelSpec } from '../types.ts';
import { breakersOf, type AttemptBreakers } from './model-health.ts';

/** One deployment of a model with every setting resolved against `ai.providers`. */
export interface ResolvedDeployment {
  /** `<model>/<deployment id>`: unique across the catalog. */
  readonly key: string;
  readonly model: ModelSpec;
  readonly deployment: Deployment;
  readonly provider: string;
  readonly protocol: 'openai' | 'anthropic';
  readonly baseUrl: string;
  readonly credentialsRef: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly region: string | undefined;
  /** The model name sent to the provider. */
  readonly upstreamModel: string;
  readonly weight: number;
  readonly breakers: AttemptBreakers;
}

/** A deployment that cannot be called as configured (its provider is not in `ai.providers`). */
export interface UnconfiguredDeployment {
  readonly key: string;
  readonly model: ModelSpec;
  readonly deployment: Deployment;
  readonly reason: string;
}

export type DeploymentSlot = ResolvedDeployment | UnconfiguredDeployment;
export const isResolved = (slot: DeploymentSlot): slot is ResolvedDeployment => !('reason' in slot);

/** Where a `credentials_ref` is read from: the environment (`env:NAME`) is passed in, files are read. */
export type CredentialSource = Readonly<Record<string, string | undefined>>;

/**
 * Deployments of catalog models, resolved once per model object (the catalog replaces its
 * objects on every change), and one provider adapter per deployment, built on first use and
 * rebuilt when the deployment's endpoint, key reference or headers change.
 */
export interface DeploymentDirectory {
  slotsOf(model: ModelSpec): readonly DeploymentSlot[];
  /**
   * The adapter for a deployment; the key is read now, never logged.
   * @throws Error naming the reference (not its value) when the key cannot be read.
   */
  adapterFor(deployment: ResolvedDeployment): ProviderAdapter;
  /** Drops adapters of deployments no longer in the catalog. */
  retain(models: readonly ModelSpec[]): void;
}

export interface DeploymentDirectoryOptions {
  readonly providers: Config['ai']['providers'];
  /** Longest wait for one answer, or between two reads of a stream (`ai.proxy.attempt_timeout`). */
  readonly attemptTimeoutMs: number;
  readonly env: CredentialSource;
  /**
   * Checks every connection of a deployment whose `base_url` is the catalog's (callers can set it
   * through /ai/models) after DNS resolution; endpoints of `ai.providers` are the operator's and are not checked.
   */
  readonly egress?: EgressPolicy;
}

export function createDeploymentDirectory(options: DeploymentDirectoryOptions): DeploymentDirectory {
  const resolved = new WeakMap<ModelSpec, readonly DeploymentSlot[]>();
  const adapters = new Map<string, { readonly signature: string; readonly adapter: ProviderAdapter }>();

  const resolve = (model: ModelSpec, deployment: Deployment): DeploymentSlot => {
    const key = `${model.model}/${deployment.id}`;
    const provider = options.providers[deployment.provider];
    if (provider === undefined) {
      return { key, model, deployment, reason: `provider '${deployment.provider}' is not configured under ai.providers` };
    }
    return {
      key,
      model,
      deployment,
      provider: deployment.provider,
      protocol: provider.protocol,
      baseUrl: deployment.base_url ?? provider.base_url,
      credentialsRef: deployment.credentials_ref ?? provider.credentials_ref,
      headers: provider.headers ?? {},
      region: deployment.region ?? provider.region,
      upstreamModel: deployment.upstream_model ?? model.model,
      weight: deployment.weight,
      breakers: breakersOf(model, deployment),
    };
  };

  const egressOf = (d: ResolvedDeployment) =>
    d.deployment.base_url === undefined || options.egress === undefined ? {} : { egress: options.egress };

  const build = (d: ResolvedDeployment): ProviderAdapter => {
    const apiKey = d.credentialsRef === undefined ? undefined : readCredential(d.credentialsRef, options.env);
    if (d.protocol === 'anthropic') {
      return createAnthropicAdapter({
        baseUrl: d.baseUrl,
        apiKey: apiKey ?? '',
        headers: d.headers,
        timeoutMs: options.attemptTimeoutMs,
        ...egressOf(d),
      });
    }
    return createOpenAiCompatibleAdapter({
      baseUrl: d.baseUrl,
      ...(apiKey === undefined ? {} : { apiKey }),
      headers: d.headers,
      timeoutMs: options.attemptTimeoutMs,
      name: d.provider,
      ...egressOf(d),
    });
  };

  return {
    slotsOf(model) {
      let slots = resolved.get(model);
      if (slots === undefined) {
        slots = model.deployments.map((deployment) => resolve(model, deployment));
        resolved.set(model, slots);
      }
      return slots;
    },
    adapterFor(d) {
      const signature = JSON.stringify([
        d.protocol,
        d.provider,
        d.baseUrl,
        d.deployment.base_url !== undefined,
        d.credentialsRef,
        d.headers,
      ]);
      const cached = adapters.get(d.key);
      if (cached?.signature === signature) return cached.adapter;
      const adapter = build(d);
      adapters.set(d.key, { signature, adapter });
      return adapter;
    },
    retain(models) {
      const keep = new Set(models.flatMap((model) => model.deployments.map((d) => `${model.model}/${d.id}`)));
      for (const key of adapters.keys()) if (!keep.has(key)) adapters.delete(key);
    },
  };
}

/**
 * The key a `credentials_ref` names: `env:NAME` from `env`, `file:/path` from the file (trimmed).
 * @throws Error naming the reference, never its value, when it is unset, empty or unreadable.
 */
export function readCredential(ref: string, env: CredentialSource): string {
  let value: string | undefined;
  if (ref.startsWith('env:')) {
    value = env[ref.slice(4)];
  } else if (ref.startsWith('file:')) {
    try {
      value = readFileSync(ref.slice(5), 'utf8').trim();
    } catch (error) {
      throw new Error(`credentials ${ref} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  } else {
    throw new Error(`credentials reference '${ref}' must start with env: or file:`);
  }
  if (value === undefined || value === '') throw new Error(`credentials ${ref} are not set`);
  return value;
}
