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

export interface ModelEstimates {
  /** In memory, O(1), no I/O: called for every candidate of every decision. */
  estimate(model: string, taskType: string, complexity: Complexity, prior: { quality: number; latencyMs: number | null }): ModelEstimate;
}

/**
 * What one outcome says about a model. Two kinds of evidence, kept apart because they answer
 * different questions:
 * - `call`: a provider call (a proxied attempt) succeeded (1) or failed for the model's own reasons (0).
 *   It says whether the model is up, not whether its answer was good, so it feeds the model's
 *   availability (shared by all its task types) and never washes out the catalog's quality figures.
 * - `outcome`: a judged result (feedback): 1/0 or a quality score in 0..1. It feeds the answer
 *   quality of (model, task type, complexity).
 */
export interface Observation {
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

export interface LearningModelEstimates extends ModelEstimates {
  /** O(1): decays what is stored to `observation.at` and adds it. */
  record(observation: Observation): void;
  /** Like `estimate`, with the parts it is made of. */
  explain(model: string, taskType: string, complexity: Complexity, prior: { quality: number; latencyMs: number | null }): EstimateBreakdown;
  /** Drops entries whose decayed weight is negligible; runs by itself when the store grows past its cap. */
  prune(): void;
  /** Entries held (models for availability plus (model, task, complexity) triples). */
  readonly size: number;
}

export interface ModelEstimatesOptions {
  /** `ai.learning.prior_strength`: how many observations the catalog's quality figure is worth. */
  readonly priorStrength: number;
  /** `ai.learning.half_life` in ms: the age at which evidence counts half. */
  readonly halfLifeMs: number;
  readonly clock: Pick<Clock, 'now'>;
  /** Entries kept before pruning; default 20 000. */
  readonly maxEntries?: number;
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

/** Below this decayed weight an entry tells nothing the prior does not: it may be dropped. */
const NEGLIGIBLE = 0.01;
const DEFAULT_MAX_ENTRIES = 20_000;

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/**
 * Online estimates of model quality, availability and latency from recorded outcomes.
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
 */
export function createModelEstimates(options: ModelEstimatesOptions): LearningModelEstimates {
  const { priorStrength: k, halfLifeMs, clock } = options;
  if (!(k > 0)) throw new Error('priorStrength must be > 0');
  if (!(halfLifeMs > 0)) throw new Error('halfLifeMs must be > 0');
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const latencyPriorWeight = options.latencyPriorWeight ?? 2;
  const lambda = Math.LN2 / halfLifeMs;
  // Availability is per model (an outage hits all its task types); quality and latency per triple.
  const calls = new Map<string, Evidence>();
  const outcomes = new Map<string, Evidence>();

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

  const keyOf = (model: string, taskType: string, complexity: string): string => `${model}\u0000${taskType}\u0000${complexity}`;

  const add = (map: Map<string, Evidence>, key: string, o: Observation, countsSuccess: boolean): void => {
    let e = map.get(key);
    if (e === undefined) {
      e = { n: 0, successes: 0, latencyN: 0, latencySum: 0, t: o.at };
      if (map.size + (map === calls ? outcomes.size : calls.size) >= maxEntries) {
        prune();
        evictOldest(map);
      }
    } else {
      // Re-inserting keeps the map in least-recently-updated order, which eviction relies on.
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

  const prune = (): void => {
    const now = clock.now();
    for (const map of [calls, outcomes]) {
      for (const [key, e] of map) {
        const w = weightAt(e, now);
        if (e.n * w < NEGLIGIBLE && e.latencyN * w < NEGLIGIBLE) map.delete(key);
      }
    }
  };
  const evictOldest = (map: Map<string, Evidence>): void => {
    // Still full after pruning: the least recently updated tenth goes, so pruning is not rerun on every insert.
    const target = Math.floor(maxEntries * 0.9);
    for (const key of map.keys()) {
      if (calls.size + outcomes.size <= target) break;
      map.delete(key);
    }
  };

  const explain = (
    model: string,
    taskType: string,
    complexity: Complexity,
    prior: { quality: number; latencyMs: number | null },
  ): EstimateBreakdown => {
    const now = clock.now();
    const q = clamp01(prior.quality);
    const o = outcomes.get(keyOf(model, taskType, complexity));
    const c = calls.get(model);
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

  return {
    record(observation) {
      if (!Number.isFinite(observation.at)) return;
      if (observation.evidence === 'call') {
        add(calls, observation.model, observation, true);
        // The call's latency belongs to the task it served.
        if (typeof observation.latencyMs === 'number')
          add(outcomes, keyOf(observation.model, observation.taskType, observation.complexity), observation, false);
      } else {
        add(outcomes, keyOf(observation.model, observation.taskType, observation.complexity), observation, true);
      }
    },
    estimate(model, taskType, complexity, prior) {
      const { quality, observations, latencyMs } = explain(model, taskType, complexity, prior);
      return { quality, observations, latencyMs };
    },
    explain,
    prune,
    get size() {
      return calls.size + outcomes.size;
    },
  };
}
