import type { CalibrationBinSums } from './store.ts';

export interface CalibrationBin {
  /** Confidence range [from, to) (the last bin includes 1). */
  readonly from: number;
  readonly to: number;
  readonly outcomes: number;
  /** Mean confidence of the decisions in the bin; null when the bin is empty. */
  readonly mean_confidence: number | null;
  /** Share of them that succeeded; null when the bin is empty. */
  readonly success_rate: number | null;
}

export interface Calibration {
  readonly outcomes: number;
  /** Mean of (confidence − success)²: 0 is perfect, 0.25 is what always saying 0.5 scores. Null without outcomes. */
  readonly brier_score: number | null;
  /** Σ over bins of (bin share) × |mean confidence − success rate|. Null without outcomes. */
  readonly expected_calibration_error: number | null;
  readonly bins: CalibrationBin[];
}

const round = (x: number): number => Math.round(x * 1e6) / 1e6;

/** Reliability bins, Brier score and expected calibration error from per-bin sums. */
export function calibrationOf(sums: readonly CalibrationBinSums[], binCount: number): Calibration {
  const byBin = new Map(sums.map((s) => [s.bin, s]));
  const total = sums.reduce((n, s) => n + s.n, 0);
  const bins: CalibrationBin[] = [];
  let gap = 0;
  for (let bin = 0; bin < binCount; bin++) {
    const s = byBin.get(bin);
    const n = s?.n ?? 0;
    bins.push({
      from: round(bin / binCount),
      to: round((bin + 1) / binCount),
      outcomes: n,
      mean_confidence: s && n > 0 ? round(s.confidence / n) : null,
      success_rate: s && n > 0 ? round(s.successes / n) : null,
    });
    if (s && n > 0) gap += Math.abs(s.confidence - s.successes);
  }
  const squared = sums.reduce((x, s) => x + s.squaredError, 0);
  return {
    outcomes: total,
    brier_score: total > 0 ? round(squared / total) : null,
    expected_calibration_error: total > 0 ? round(gap / total) : null,
    bins,
  };
}
