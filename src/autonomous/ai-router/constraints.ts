import { invalidRouteContext } from './errors.ts';
import { OPTIMIZE_MODES, type Optimize } from './tenant-policy.ts';
import { CAPABILITIES, type Capability } from './types.ts';

/**
 * The hard constraints of a routing decision, in the order they are checked. A model that fails
 * several is reported under the first it fails.
 */
export const CONSTRAINTS = [
  'routing_policy',
  'tenant_providers',
  'tenant_regions',
  'capabilities',
  'circuit_open',
  'context_window',
  'max_cost',
  'max_latency_ms',
] as const;
export type Constraint = (typeof CONSTRAINTS)[number];

/** The request's own limits, read from `context`. */
export interface RouteLimits {
  /** USD; Infinity when not set. */
  readonly maxCost: number;
  readonly maxLatencyMs: number | undefined;
  readonly optimize: Optimize | undefined;
  /** Bit mask of required capabilities, see {@link capabilityMask}. */
  readonly capabilities: number;
  readonly capabilityNames: readonly Capability[];
}

/** Bit i stands for CAPABILITIES[i], so "has every required capability" is one AND. */
export const capabilityMask = (capabilities: readonly Capability[]): number => {
  let mask = 0;
  for (const capability of capabilities) mask |= 1 << CAPABILITIES.indexOf(capability);
  return mask;
};

const NO_LIMITS: RouteLimits = Object.freeze({
  maxCost: Infinity,
  maxLatencyMs: undefined,
  optimize: undefined,
  capabilities: 0,
  capabilityNames: Object.freeze([]),
});

/**
 * Reads `max_cost` (USD, number ≥ 0), `max_latency_ms` (integer ≥ 0), `optimize` (a mode) and
 * `capabilities` (a list of known capabilities) from a request context; each is optional. The
 * HTTP schema rejects bad values first; this check guards callers inside the process (the proxy).
 * @throws BlocksError `INVALID_ROUTE_CONTEXT` (400) naming the field.
 */
export function readLimits(context: Readonly<Record<string, unknown>> | undefined): RouteLimits {
  if (context === undefined) return NO_LIMITS;
  const { max_cost: maxCost, max_latency_ms: maxLatency, optimize, capabilities } = context;
  if (maxCost === undefined && maxLatency === undefined && optimize === undefined && capabilities === undefined) return NO_LIMITS;
  if (maxCost !== undefined && !(typeof maxCost === 'number' && Number.isFinite(maxCost) && maxCost >= 0)) {
    throw invalidRouteContext('max_cost', 'must be a non-negative number of USD');
  }
  if (maxLatency !== undefined && !(typeof maxLatency === 'number' && Number.isSafeInteger(maxLatency) && maxLatency >= 0)) {
    throw invalidRouteContext('max_latency_ms', 'must be a non-negative integer number of milliseconds');
  }
  if (optimize !== undefined && !(OPTIMIZE_MODES as readonly unknown[]).includes(optimize)) {
    throw invalidRouteContext('optimize', `must be one of ${OPTIMIZE_MODES.join(', ')}`);
  }
  let capabilityNames: readonly Capability[] = [];
  if (capabilities !== undefined) {
    if (!Array.isArray(capabilities) || !capabilities.every((c) => (CAPABILITIES as readonly unknown[]).includes(c))) {
      throw invalidRouteContext('capabilities', `must be a list of ${CAPABILITIES.join(', ')}`);
    }
    capabilityNames = capabilities as Capability[];
  }
  return {
    maxCost: maxCost ?? Infinity,
    maxLatencyMs: maxLatency,
    optimize: optimize as Optimize | undefined,
    capabilities: capabilityMask(capabilityNames),
    capabilityNames,
  };
}
