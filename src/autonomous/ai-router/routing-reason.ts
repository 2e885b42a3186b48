import type { Constraint, RouteLimits } from './constraints.ts';
import type { Optimize } from './tenant-policy.ts';
import type { ModelSpec } from './types.ts';

/** One ranked model's figures, as the decision saw them. */
export interface Figures {
  readonly model: string;
  readonly quality: number;
  readonly cost: number;
  readonly latencyMs: number | null;
  readonly score: number;
}

/**
 * How the selection came about: the top-ranked model; the caller's preference, which is also
 * (or is not) the top-ranked; or exploration serving the runner-up.
 */
export type ChoiceKind = 'top' | 'preferred-and-top' | 'preferred' | 'exploring';

export interface Choice {
  /** `task_type/complexity`. */
  readonly task: string;
  readonly optimize: Optimize;
  readonly weights: { readonly quality: number; readonly cost: number; readonly latency: number };
  readonly selected: Figures;
  /** The runner-up, or for `preferred` and `exploring` the top-ranked model; undefined when alone. */
  readonly other: Figures | undefined;
  readonly kind: ChoiceKind;
  readonly exploration?: number;
}

/** Contributions smaller than this to a score difference are not named as a factor. */
const NEGLIGIBLE = 1e-9;
/** Names listed per excluding constraint in a reason; the rest are counted. */
const NAMES_SHOWN = 5;

/**
 * The first clause of `routing_reason`, starting with the selected model id and a colon:
 * the deciding factors of the ranking between the selected model and `other`.
 */
export function describeChoice(choice: Choice): string {
  const { selected, other, task, optimize, weights } = choice;
  const mode = `optimizing ${optimize} (weights quality ${weights.quality}, cost ${weights.cost}, latency ${weights.latency})`;
  if (other === undefined) {
    const prefix = choice.kind === 'top' ? 'the only eligible model' : 'preferred model, the only eligible one';
    return `${selected.model}: ${prefix} for ${task} (${figures(selected)})`;
  }
  switch (choice.kind) {
    case 'top':
      return `${selected.model}: ranked first for ${task} ${mode}: ${compare(selected, other, `runner-up ${other.model}`, weights)}`;
    case 'preferred-and-top':
      return `${selected.model}: preferred model, also ranked first for ${task} ${mode}: ${compare(selected, other, `runner-up ${other.model}`, weights)}`;
    case 'preferred':
      return (
        `${selected.model}: preferred model honoured for ${task} (${figures(selected)}); ` +
        `${mode} the ranking would choose ${other.model}: ${compare(other, selected, selected.model, weights)}`
      );
    case 'exploring':
      return (
        `${selected.model}: exploring (probability ${choice.exploration ?? 0}), the runner-up served instead of ` +
        `${other.model}, ranked first for ${task} ${mode}: ${compare(other, selected, selected.model, weights)}`
      );
  }
}

/**
 * Why `a` ranks above `b`: the score terms in `a`'s favour, and those against it when there are
 * any, largest contribution first; a tie says what broke it.
 */
function compare(a: Figures, b: Figures, bLabel: string, weights: Choice['weights']): string {
  const factors: Array<{ weight: number; text: string }> = [];
  if (weights.quality > 0 && a.quality !== b.quality) {
    factors.push({
      weight: weights.quality * (a.quality - b.quality),
      text: `${a.quality > b.quality ? 'higher' : 'lower'} quality (${quality(a.quality)} vs ${quality(b.quality)})`,
    });
  }
  if (weights.cost > 0 && a.cost !== b.cost) {
    factors.push({
      weight: -weights.cost * Math.log10(Math.max(a.cost, 1e-9) / Math.max(b.cost, 1e-9)),
      text: `${ratio(a.cost, b.cost)} ${a.cost < b.cost ? 'lower' : 'higher'} cost (${usd(a.cost)} vs ${usd(b.cost)})`,
    });
  }
  if (weights.latency > 0 && a.latencyMs !== null && b.latencyMs !== null && a.latencyMs !== b.latencyMs) {
    factors.push({
      weight: -weights.latency * Math.log10(Math.max(a.latencyMs, 1) / Math.max(b.latencyMs, 1)),
      text: `${ratio(a.latencyMs, b.latencyMs)} ${a.latencyMs < b.latencyMs ? 'lower' : 'higher'} latency (${ms(a.latencyMs)} vs ${ms(b.latencyMs)})`,
    });
  }
  const pros = factors.filter((f) => f.weight > NEGLIGIBLE).sort((x, y) => y.weight - x.weight);
  const cons = factors.filter((f) => f.weight < -NEGLIGIBLE).sort((x, y) => x.weight - y.weight);
  if (pros.length === 0) {
    const tieBreak = a.quality !== b.quality ? 'higher quality' : a.cost !== b.cost ? 'lower cost' : 'model id';
    return `same score as ${bLabel} (${figures(b)}), ahead by ${tieBreak}`;
  }
  const advantages = list(pros.map((f) => f.text));
  if (cons.length === 0) return `${advantages} than ${bLabel}`;
  return `${advantages} outweigh${pros.length === 1 ? 's' : ''} ${list(cons.map((f) => f.text))} against ${bLabel}`;
}

export interface ExclusionContext {
  readonly promptTokens: number;
  readonly outputTokens: number;
  readonly limits: RouteLimits;
  readonly tenant: string;
}

/**
 * The clause naming what each constraint removed, or '' when nothing was. Models outside a
 * routing policy are left out: the policy chose them away, there is nothing to explain.
 */
export function describeExclusions(excluded: Partial<Record<Constraint, readonly string[]>>, context: ExclusionContext): string {
  const groups: string[] = [];
  for (const [constraint, models] of Object.entries(excluded) as Array<[Constraint, readonly string[]]>) {
    if (constraint === 'routing_policy') continue;
    const shown = models.slice(0, NAMES_SHOWN).join(', ');
    const more = models.length > NAMES_SHOWN ? ` and ${models.length - NAMES_SHOWN} more` : '';
    groups.push(`${exclusionLabel(constraint, context)}: ${shown}${more}`);
  }
  return groups.join('; ');
}

function exclusionLabel(constraint: Constraint, context: ExclusionContext): string {
  const { limits, tenant } = context;
  switch (constraint) {
    case 'routing_policy':
      return 'not in the routing policy';
    case 'tenant_providers':
      return `provider not allowed for tenant '${tenant}'`;
    case 'tenant_regions':
      return `no deployment in a region allowed for tenant '${tenant}'`;
    case 'capabilities':
      return `lacking ${list([...limits.capabilityNames])}`;
    case 'circuit_open':
      return 'circuit breaker open';
    case 'context_window':
      return `context window too small for ${context.promptTokens} prompt + ${context.outputTokens} expected output tokens`;
    case 'max_cost':
      return `estimated cost over max_cost ${usd(limits.maxCost)}`;
    case 'max_latency_ms':
      return `latency over max_latency_ms ${limits.maxLatencyMs ?? 0} or unknown`;
  }
}

export interface RefusalContext extends ExclusionContext {
  readonly spec: ModelSpec;
  /** The model's estimated cost and latency; meaningful only for the constraints checked after estimating. */
  readonly cost: number;
  readonly latencyMs: number | null;
}

/** Why one model (a refused `preferred_model`) failed `constraint`, as a clause starting with "it"/"its"/"tenant". */
export function describeRefusal(constraint: Constraint, context: RefusalContext): string {
  const { spec, limits, tenant } = context;
  switch (constraint) {
    case 'routing_policy':
      return "it is not among the routing policy's models";
    case 'tenant_providers':
      return `tenant '${tenant}' does not allow its provider (${list([...new Set(spec.deployments.map((d) => d.provider))])})`;
    case 'tenant_regions':
      return `none of its deployments is in a region tenant '${tenant}' allows`;
    case 'capabilities': {
      const missing = limits.capabilityNames.filter((c) => !spec.capabilities.includes(c));
      return `it lacks ${list(missing)}`;
    }
    case 'circuit_open':
      return 'its circuit breaker is open';
    case 'context_window':
      return (
        `its context window (${spec.context_window} tokens) is too small for ` +
        `${context.promptTokens} prompt + ${context.outputTokens} expected output tokens`
      );
    case 'max_cost':
      return `its estimated cost ${usd(context.cost)} exceeds max_cost ${usd(limits.maxCost)}`;
    case 'max_latency_ms':
      return context.latencyMs === null
        ? `its latency is unknown, so max_latency_ms ${limits.maxLatencyMs ?? 0} cannot be promised`
        : `its latency (${ms(context.latencyMs)}) exceeds max_latency_ms ${limits.maxLatencyMs ?? 0}`;
  }
}

const list = (items: readonly string[]): string =>
  items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1] as string}`;
const figures = (f: Figures): string =>
  `quality ${quality(f.quality)} at ${usd(f.cost)}${f.latencyMs === null ? '' : `, ${ms(f.latencyMs)}`}`;
const quality = (value: number): string => String(Math.round(value * 1e3) / 1e3);
const ms = (value: number): string => `${Math.round(value)} ms`;
/** `3.2×` or `15×`: two significant figures are all a reader uses. */
const ratio = (a: number, b: number): string => {
  const r = Math.max(a, b) / Math.max(Math.min(a, b), 1e-12);
  return `${r >= 10 ? Math.round(r) : Math.round(r * 10) / 10}×`;
};
// toFixed keeps tiny costs out of exponent notation; trailing zeros only add noise.
export const usd = (value: number): string => `$${(Math.round(value * 1e8) / 1e8).toFixed(8).replace(/\.?0+$/, '')}`;
