import type { Clock } from '../../../platform/clock.ts';
import type { Complexity } from '../types.ts';

export interface ModelEstimate {
  /** Posterior mean P(success) for (model, task type, complexity); the catalog quality when nothing is recorded. */
  readonly quality: number;
  /** Effective (decayed) number of recorded outcomes behind it. */
  readonly observations: number;
  /** Learned typical latency in ms; the prior (catalog typical_latency_ms) when nothing recorded; null if neither. */
  readonly latencyMs: number | null;
}

/** What one tenant's evidence says about models; read it at once (see {@link ModelEstimates.forTenant}). */
export interface TenantEstimates {
  /** In memory, O(1), no I/O: called for every candidate of every decision. */
  estimate(model: string, taskType: string, complexity: Complexity, prior: { quality: number; latencyMs: number | null }): ModelEstimate;
}

export interface ModelEstimates {
  /**
   * The estimates learned from `tenant`'s own outcomes, the catalog prior being the only thing
   * tenants share: one tenant's feedback and calls never move another's figures. One map lookup;
   * take it once per decision and use it at once (a view taken before the tenant's first
   * evidence stays the prior).
   */
  forTenant(tenant: string): TenantEstimates;
}

/**
 * What one outcome says about a model, for the tenant it happened to. Two kinds of evidence, kept
 * apart because they answer different questions:
 * - `call`: a provider call (a proxied attempt) succeeded (1) or failed for the model's own reasons (0).
 *   It says whether the model is up, not whether its answer was good, so it feeds the model's
 *   availability (shared by all its task types) and never washes out the catalog's quality figures.
 * - `outcome`: a judged result (feedback): 1/0 or a quality score in 0..1. It feeds the answer
 *   quality of (model, task type, complexity).
 */
export interface Observation {
  /** Whose request it was: only that tenant's estimates learn from it. */
  readonly tenant: string;
  readonly evidence: 'call' | 'outcome';
  readonly model: string;
  readonly taskType: string;
  readonly complexity: Complexity;
  /** 0..1; clamped. */
  readonly success: number;
  readonly latencyMs?: number | null;
  /** When it happened (epoch ms): older evidence weighs less. */
  readonly at: number;
}

/** The pieces behind an estimate, for `/stats` and the docs. */
export interface EstimateBreakdown extends ModelEstimate {
  /** Posterior mean of the answer quality (catalog prior + `outcome` evidence). */
  readonly answerQuality: number;
  /** Decayed `outcome` evidence for this (model, task, complexity). */
  readonly outcomeObservations: number;
  /** Posterior probability that a call to the model succeeds (prior 1, `call` evidence). */
  readonly availability: number;
  /** Decayed `call` evidence for the model. */
  readonly callObservations: number;
}

export interface LearningTenantEstimates extends TenantEstimates {
  /** Like `estimate`, with the parts it is made of. */
  explain(model: string, taskType: string, complexity: Complexity, prior: { quality: number; latencyMs: number | null }): EstimateBreakdown;
}

export interface LearningModelEstimates extends ModelEstimates {
  forTenant(tenant: string): LearningTenantEstimates;
  /** O(1): decays what `observation.tenant` has stored to `observation.at` and adds it. */
  record(observation: Observation): void;
  /** Drops entries whose decayed weight is negligible; runs by itself when a cap is reached. */
  prune(): void;
  /** Entries held over all tenants (models for availability plus (model, task, complexity) triples). */
  readonly size: number;
  /** Tenants with evidence held. */
  readonly tenants: number;
}

export interface ModelEstimatesOptions {
  /** `ai.learning.prior_strength`: how many observations the catalog's quality figure is worth. */
  readonly priorStrength: number;
  /** `ai.learning.half_life` in ms: the age at which evidence counts half. */
  readonly halfLifeMs: number;
  readonly clock: Pick<Clock, 'now'>;
  /** Entries kept over all tenants before pruning; default 100 000 (about 25 MB, some 240 bytes each). */
  readonly maxEntries?: number;
  /** Entries one tenant may hold; default 10 000, at most `maxEntries`. */
  readonly maxEntriesPerTenant?: number;
  /** Observations the catalog's typical latency is worth; default 2, so a few real calls outweigh it. */
  readonly latencyPriorWeight?: number;
}

/** Decayed sums as of `t`; every read or write first brings them to the current time. */
interface Evidence {
  n: number;
  successes: number;
  latencyN: number;
  latencySum: number;
  t: number;
}

/** One tenant's evidence; both maps are kept in least-recently-updated order, which eviction relies on. */
interface EvidenceMaps {
  /** Availability is per model (an outage hits all its task types). */
  readonly calls: Map<string, Evidence>;
  /** Quality and latency per (model, task type, complexity). */
  readonly outcomes: Map<string, Evidence>;
}

interface TenantEvidence extends EvidenceMaps {
  /** Made once per tenant, so a decision's lookup allocates nothing. */
  readonly view: LearningTenantEstimates;
}

/** Below this decayed weight an entry tells nothing the prior does not: it may be dropped. */
const NEGLIGIBLE = 0.01;
const DEFAULT_MAX_ENTRIES = 100_000;
const DEFAULT_MAX_ENTRIES_PER_TENANT = 10_000;
/** Eviction goes down to this share of a cap, so it does not rerun on every insert. */
const EVICT_TO = 0.9;

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);
const keyOf = (model: string, taskType: string, complexity: string): string => `${model}\u0000${taskType}\u0000${complexity}`;

/**
 * Online estimates of model quality, availability and latency from recorded outcomes, learned
 * per tenant: each tenant starts from the catalog prior and moves only with its own evidence.
 *
 * Answer quality of (model, task type, complexity) is the mean of a Beta posterior whose prior is
 * the catalog quality q with strength k (α0 = q·k, β0 = (1−q)·k), updated with `outcome` evidence.
 * Availability of a model is (k + s) / (k + n) over its `call` evidence: a prior of k successes,
 * so an unobserved model counts as up. The estimate's quality is their product: P(the call works
 * and the answer is good).
 *
 * All evidence decays exponentially with the half-life: sums are stored already decayed, with
 * the time they were brought to, and are decayed lazily on access, so `record` and `estimate`
 * are O(1) with no timers. Only evidence is stored; the prior comes with each call because the
 * catalog can change.
 *
 * Memory is bounded twice. A tenant past `maxEntriesPerTenant` loses its own negligible, then its
 * least recently updated entries, so no tenant can crowd out another's. Past `maxEntries` over
 * all tenants, negligible entries everywhere go, then whole tenants, least recently updated first
 * (they fall back to the prior, as a new tenant starts).
 */
export function createModelEstimates(options: ModelEstimatesOptions): LearningModelEstimates {
  const { priorStrength: k, halfLifeMs, clock } = options;
  if (!(k > 0)) throw new Error('priorStrength must be > 0');
  if (!(halfLifeMs > 0)) throw new Error('halfLifeMs must be > 0');
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const perTenant = Math.min(options.maxEntriesPerTenant ?? DEFAULT_MAX_ENTRIES_PER_TENANT, maxEntries);
  if (!(perTenant >= 1)) throw new Error('maxEntries and maxEntriesPerTenant must be >= 1');
  const latencyPriorWeight = options.latencyPriorWeight ?? 2;
  const lambda = Math.LN2 / halfLifeMs;
  /** Least recently updated tenant first. */
  const tenants = new Map<string, TenantEvidence>();
  let total = 0;

  const decayTo = (e: Evidence, t: number): void => {
    if (t <= e.t) return;
    const f = Math.exp(-lambda * (t - e.t));
    e.n *= f;
    e.successes *= f;
    e.latencyN *= f;
    e.latencySum *= f;
    e.t = t;
  };
  /** Decayed view at `t` without changing the stored entry (estimates must not reorder time). */
  const weightAt = (e: Evidence, t: number): number => (t <= e.t ? 1 : Math.exp(-lambda * (t - e.t)));
  const negligible = (e: Evidence, now: number): boolean => {
    const w = weightAt(e, now);
    return e.n * w < NEGLIGIBLE && e.latencyN * w < NEGLIGIBLE;
  };
  const sizeOf = (tenant: TenantEvidence): number => tenant.calls.size + tenant.outcomes.size;

  const explainFrom =
    (tenant: EvidenceMaps | undefined) =>
    (model: string, taskType: string, complexity: Complexity, prior: { quality: number; latencyMs: number | null }): EstimateBreakdown => {
      const q = clamp01(prior.quality);
      const o = tenant?.outcomes.get(keyOf(model, taskType, complexity));
      const c = tenant?.calls.get(model);
      if (o === undefined && c === undefined) {
        return {
          quality: q,
          observations: 0,
          latencyMs: prior.latencyMs,
          answerQuality: q,
          outcomeObservations: 0,
          availability: 1,
          callObservations: 0,
        };
      }
      const now = clock.now();
      const ow = o === undefined ? 0 : weightAt(o, now);
      const cw = c === undefined ? 0 : weightAt(c, now);
      const on = o === undefined ? 0 : o.n * ow;
      const cn = c === undefined ? 0 : c.n * cw;
      const answerQuality = (q * k + (o === undefined ? 0 : o.successes * ow)) / (k + on);
      const availability = (k + (c === undefined ? 0 : c.successes * cw)) / (k + cn);
      // Latency is learned per triple; observations from calls and from feedback land in the same sums.
      const latencyN = o === undefined ? 0 : o.latencyN * ow;
      const latencySum = o === undefined ? 0 : o.latencySum * ow;
      let latencyMs: number | null;
      if (prior.latencyMs === null) latencyMs = latencyN > 0 ? latencySum / latencyN : null;
      else latencyMs = (prior.latencyMs * latencyPriorWeight + latencySum) / (latencyPriorWeight + latencyN);
      return {
        quality: answerQuality * availability,
        observations: on + cn,
        latencyMs,
        answerQuality,
        outcomeObservations: on,
        availability,
        callObservations: cn,
      };
    };
  const viewOf = (tenant: EvidenceMaps | undefined): LearningTenantEstimates => {
    const explain = explainFrom(tenant);
    return {
      explain,
      estimate(model, taskType, complexity, prior) {
        const { quality, observations, latencyMs } = explain(model, taskType, complexity, prior);
        return { quality, observations, latencyMs };
      },
    };
  };
  /** A tenant with no evidence held: the catalog prior. */
  const priorView = viewOf(undefined);

  /** Drops `tenant`'s negligible entries; returns how many went. */
  const pruneTenant = (tenant: TenantEvidence, now: number): number => {
    let dropped = 0;
    for (const map of [tenant.calls, tenant.outcomes]) {
      for (const [key, e] of map) {
        if (!negligible(e, now)) continue;
        map.delete(key);
        dropped++;
      }
    }
    total -= dropped;
    return dropped;
  };
  /** `keep`: the tenant being written to, which stays even when nothing of it is left. */
  const prune = (keep?: string): void => {
    const now = clock.now();
    for (const [name, tenant] of tenants) {
      pruneTenant(tenant, now);
      if (sizeOf(tenant) === 0 && name !== keep) tenants.delete(name);
    }
  };
  /** Makes room for one more entry of `tenant`, within its own cap and then the overall one. */
  const makeRoom = (name: string, tenant: TenantEvidence): void => {
    if (sizeOf(tenant) >= perTenant) {
      pruneTenant(tenant, clock.now());
      // Still full: its least recently updated entries go, availability last (one per model, they are few).
      const target = Math.floor(perTenant * EVICT_TO);
      for (const map of [tenant.outcomes, tenant.calls]) {
        for (const key of map.keys()) {
          if (sizeOf(tenant) <= target) break;
          map.delete(key);
          total--;
        }
      }
    }
    if (total >= maxEntries) {
      prune(name);
      const target = Math.floor(maxEntries * EVICT_TO);
      for (const [other, evidence] of tenants) {
        if (total <= target) break;
        if (other === name) continue;
        tenants.delete(other);
        total -= sizeOf(evidence);
      }
    }
  };

  const tenantOf = (name: string): TenantEvidence => {
    let tenant = tenants.get(name);
    if (tenant === undefined) {
      const maps: EvidenceMaps = { calls: new Map(), outcomes: new Map() };
      tenant = { ...maps, view: viewOf(maps) };
    } else {
      // Re-inserting keeps tenants in least-recently-updated order.
      tenants.delete(name);
    }
    tenants.set(name, tenant);
    return tenant;
  };

  const add = (
    name: string,
    tenant: TenantEvidence,
    map: Map<string, Evidence>,
    key: string,
    o: Observation,
    countsSuccess: boolean,
  ): void => {
    let e = map.get(key);
    if (e === undefined) {
      makeRoom(name, tenant);
      e = { n: 0, successes: 0, latencyN: 0, latencySum: 0, t: o.at };
      total++;
    } else {
      map.delete(key);
    }
    map.set(key, e);
    decayTo(e, o.at);
    // An observation older than the stored sums counts with the weight it has at that time.
    const w = o.at < e.t ? Math.exp(-lambda * (e.t - o.at)) : 1;
    if (countsSuccess) {
      e.n += w;
      e.successes += w * clamp01(o.success);
    }
    const latency = o.latencyMs;
    if (typeof latency === 'number' && Number.isFinite(latency) && latency >= 0) {
      e.latencyN += w;
      e.latencySum += w * latency;
    }
  };

  return {
    forTenant(name) {
      return tenants.get(name)?.view ?? priorView;
    },
    record(observation) {
      if (!Number.isFinite(observation.at)) return;
      const { tenant: name, model, taskType, complexity } = observation;
      const tenant = tenantOf(name);
      if (observation.evidence === 'call') {
        add(name, tenant, tenant.calls, model, observation, true);
        // The call's latency belongs to the task it served.
        if (typeof observation.latencyMs === 'number')
          add(name, tenant, tenant.outcomes, keyOf(model, taskType, complexity), observation, false);
      } else {
        add(name, tenant, tenant.outcomes, keyOf(model, taskType, complexity), observation, true);
      }
    },
    prune,
    get size() {
      return total;
    },
    get tenants() {
      return tenants.size;
    },
  };
}
