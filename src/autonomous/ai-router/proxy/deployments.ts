import type { AiConfig } from '../config.ts';
import type { Logger } from '../../../platform/logger.ts';
import type { EgressPolicy } from '../../../platform/net/egress.ts';
import { isSecretError, type SecretResolver } from '../../../platform/secrets/index.ts';
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
  /** The deployment's own reference; the provider's only when the deployment calls the provider's own endpoint. */
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

/**
 * Deployments of catalog models, resolved once per model object (the catalog replaces its
 * objects on every change), and one provider adapter per deployment, built on first use and
 * rebuilt when the deployment's endpoint, key reference or headers change.
 */
export interface DeploymentDirectory {
  slotsOf(model: ModelSpec): readonly DeploymentSlot[];
  /**
   * The adapter for a deployment; the key is read now (within the `secrets` bounds), never logged.
   * @throws Error naming the secret error's code when the key cannot be read or its reference is
   *   refused; the reference itself goes to the log only (the API never shows references).
   */
  adapterFor(deployment: ResolvedDeployment): ProviderAdapter;
  /** Drops adapters of deployments no longer in the catalog. */
  retain(models: readonly ModelSpec[]): void;
}

export interface DeploymentDirectoryOptions {
  readonly providers: AiConfig['providers'];
  /** Longest wait for one answer, or between two reads of a stream (`ai.proxy.attempt_timeout`). */
  readonly attemptTimeoutMs: number;
  /** Reads `credentials_ref`s: a reference stored before the bounds existed, or since narrowed, is refused here. */
  readonly secrets: SecretResolver;
  /** Where a refused or unreadable reference is reported (once per deployment and reference). */
  readonly logger: Logger;
  /**
   * Checks every connection of a deployment whose `base_url` is the catalog's (callers can set it
   * through /ai/models) after DNS resolution; endpoints of `ai.providers` are the operator's and are not checked.
   */
  readonly egress?: EgressPolicy;
}

export function createDeploymentDirectory(options: DeploymentDirectoryOptions): DeploymentDirectory {
  const resolved = new WeakMap<ModelSpec, readonly DeploymentSlot[]>();
  const adapters = new Map<string, { readonly signature: string; readonly adapter: ProviderAdapter }>();
  const reported = new Set<string>();

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
      // The provider's key goes to the provider's endpoint only: a catalog writer who points a
      // deployment elsewhere names a key of their own (or none), never receives the operator's.
      credentialsRef:
        deployment.credentials_ref ??
        (isSameEndpoint(deployment.base_url ?? provider.base_url, provider.base_url) ? provider.credentials_ref : undefined),
      headers: provider.headers ?? {},
      region: deployment.region ?? provider.region,
      upstreamModel: deployment.upstream_model ?? model.model,
      weight: deployment.weight,
      breakers: breakersOf(model, deployment),
    };
  };

  const egressOf = (d: ResolvedDeployment) =>
    d.deployment.base_url === undefined || options.egress === undefined ? {} : { egress: options.egress };

  const keyOf = (d: ResolvedDeployment, ref: string): string => {
    try {
      return options.secrets.read(ref);
    } catch (error) {
      if (!isSecretError(error)) throw error;
      const report = `${d.key}\n${ref}\n${error.code}`;
      if (!reported.has(report)) {
        reported.add(report);
        options.logger.warn(
          { model: d.model.model, deployment: d.deployment.id, code: error.code, detail: error.detail },
          'AI deployment credentials refused',
        );
      }
      throw new Error(`no usable key: ${error.code}`, { cause: error });
    }
  };

  const build = (d: ResolvedDeployment): ProviderAdapter => {
    const apiKey = d.credentialsRef === undefined ? undefined : keyOf(d, d.credentialsRef);
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

/** Whether two base URLs name one endpoint (as URLs: case of the host, default port and a trailing slash aside). */
function isSameEndpoint(a: string, b: string): boolean {
  if (a === b) return true;
  const normalised = (url: string): string | undefined => {
    try {
      return new URL(url).href.replace(/\/+$/, '');
    } catch {
      return undefined; // not a URL: compared as written above, and nothing else matches it
    }
  };
  const first = normalised(a);
  return first !== undefined && first === normalised(b);
}
