import type { Deployment, ModelSpec } from './types.ts';

/** What a request optimises for; each mode has its own ranking weights (`ai.routing.weights`). */
export type Optimize = 'cost' | 'quality' | 'latency' | 'balanced';
export const OPTIMIZE_MODES: readonly Optimize[] = ['cost', 'quality', 'latency', 'balanced'];

/** A tenant's routing policy, as `ai.tenants.<tenant>` in the configuration. */
export interface TenantPolicy {
  /** Providers the tenant's requests may go to; any when omitted. */
  readonly allowed_providers?: readonly string[];
  /** Data-residency regions the tenant's requests may go to; any when omitted. */
  readonly allowed_regions?: readonly string[];
  /** The tenant's default optimisation; `ai.routing.optimize` when omitted. */
  readonly optimize?: Optimize;
}

/** The part of `ai.providers.<name>` that placement needs. */
export interface ProviderPlacement {
  readonly region?: string;
}

/** Why a tenant may not use a model, or null when it may. */
export type TenantVerdict = 'tenant_providers' | 'tenant_regions' | null;

/** Where a deployment runs: its own region, else its provider's, else unknown (null). */
export const regionOf = (deployment: Deployment, providers: Readonly<Record<string, ProviderPlacement>>): string | null =>
  deployment.region ?? providers[deployment.provider]?.region ?? null;

/**
 * Whether a tenant may send requests to one deployment: its provider is allowed and its region is
 * allowed. A deployment whose region is unknown never satisfies `allowed_regions`: residency is a
 * promise, and an unknown place cannot keep it.
 */
export function deploymentAllowed(
  deployment: Deployment,
  policy: TenantPolicy | undefined,
  providers: Readonly<Record<string, ProviderPlacement>>,
): boolean {
  if (policy === undefined) return true;
  if (policy.allowed_providers !== undefined && !policy.allowed_providers.includes(deployment.provider)) return false;
  if (policy.allowed_regions === undefined) return true;
  const region = regionOf(deployment, providers);
  return region !== null && policy.allowed_regions.includes(region);
}

/**
 * Whether a tenant may use a model at all: at least one of its deployments is allowed
 * ({@link deploymentAllowed}). A refusal names the first reason: no deployment on an allowed
 * provider (`tenant_providers`), else none of those in an allowed region (`tenant_regions`).
 * The proxy must call only the allowed deployments ({@link allowedDeployments}).
 */
export function tenantVerdict(
  spec: ModelSpec,
  policy: TenantPolicy | undefined,
  providers: Readonly<Record<string, ProviderPlacement>>,
): TenantVerdict {
  if (policy === undefined) return null;
  const onProvider = spec.deployments.filter((d) => policy.allowed_providers?.includes(d.provider) ?? true);
  if (onProvider.length === 0) return 'tenant_providers';
  return onProvider.some((d) => deploymentAllowed(d, policy, providers)) ? null : 'tenant_regions';
}

/** The deployments of a model a tenant may use, in catalog order. */
export const allowedDeployments = (
  spec: ModelSpec,
  policy: TenantPolicy | undefined,
  providers: Readonly<Record<string, ProviderPlacement>>,
): readonly Deployment[] =>
  policy === undefined ? spec.deployments : spec.deployments.filter((d) => deploymentAllowed(d, policy, providers));
