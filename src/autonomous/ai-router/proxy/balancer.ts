import type { ResolvedDeployment } from './deployments.ts';

/** Where a tenant's calls may go (`ai.tenants.<tenant>`). */
export interface TenantPlacement {
  readonly allowed_providers?: readonly string[];
  readonly allowed_regions?: readonly string[];
}

/**
 * Spreads calls over a model's deployments: weighted and least busy. Counts this process's
 * calls in flight per deployment, and keeps a deployment that answered 429 with Retry-After
 * out of the way until then.
 */
export interface Balancer {
  /**
   * The deployments a tenant may use, best first: fewest calls in flight per unit of weight,
   * ties broken at random in proportion to weight; deployments cooling down after a 429 last.
   */
  order(deployments: readonly ResolvedDeployment[], placement: TenantPlacement | undefined): ResolvedDeployment[];
  /** A call started on the deployment; call the returned function once when it ends. */
  acquire(deployment: ResolvedDeployment): () => void;
  /** The provider asked us to stay away from this deployment for `ms`. */
  coolDown(deployment: ResolvedDeployment, ms: number): void;
  /** Calls in flight on the deployment. */
  inFlight(deployment: ResolvedDeployment): number;
}

export function allowedFor(deployment: ResolvedDeployment, placement: TenantPlacement | undefined): boolean {
  if (placement === undefined) return true;
  if (placement.allowed_providers !== undefined && !placement.allowed_providers.includes(deployment.provider)) return false;
  // A deployment whose region is unknown cannot prove it keeps data where the tenant requires.
  if (
    placement.allowed_regions !== undefined &&
    (deployment.region === undefined || !placement.allowed_regions.includes(deployment.region))
  )
    return false;
  return true;
}

export function createBalancer(options: { now?: () => number; random?: () => number } = {}): Balancer {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const busy = new Map<string, number>();
  const coolingUntil = new Map<string, number>();

  const cooling = (d: ResolvedDeployment, at: number): boolean => {
    const until = coolingUntil.get(d.key);
    if (until === undefined) return false;
    if (until > at) return true;
    coolingUntil.delete(d.key);
    return false;
  };

  return {
    order(deployments, placement) {
      const at = now();
      const ranked = deployments
        .filter((d) => allowedFor(d, placement))
        .map((d) => ({
          d,
          cooling: cooling(d, at),
          load: (busy.get(d.key) ?? 0) / d.weight,
          // Efraimidis–Spirakis: sorting by u^(1/w) draws in proportion to weight.
          draw: random() ** (1 / d.weight),
        }));
      if (ranked.length < 2) return ranked.map((r) => r.d);
      ranked.sort((a, b) => Number(a.cooling) - Number(b.cooling) || a.load - b.load || b.draw - a.draw);
      return ranked.map((r) => r.d);
    },
    acquire(d) {
      busy.set(d.key, (busy.get(d.key) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (busy.get(d.key) ?? 1) - 1;
        if (left <= 0) busy.delete(d.key);
        else busy.set(d.key, left);
      };
    },
    coolDown(d, ms) {
      if (ms > 0) coolingUntil.set(d.key, Math.max(coolingUntil.get(d.key) ?? 0, now() + ms));
    },
    inFlight: (d) => busy.get(d.key) ?? 0,
  };
}
