/** Maps a value to the label value it is counted under. */
export type LabelBound = (value: string) => string;

export interface BoundedLabelOptions {
  /** Whether a value may be a label value at all, e.g. "is a model of the catalog". */
  readonly accept: (value: string) => boolean;
  /** Distinct values passed through at most; later ones are counted under `fallback`. */
  readonly maxValues: number;
  /** What every other value is counted under, e.g. `unknown`. */
  readonly fallback: string;
}

/** Control characters: the text format would carry them raw (it escapes only \\, " and line feed). */
const hasControlCharacter = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
};

/**
 * A label whose values come from a bounded set. Every series is kept for the life of the process,
 * so a label taking values from a request (a model name, a path, a header) lets any caller grow
 * /metrics without end: each value here must pass `accept`, be free of control characters and be
 * one of the first `maxValues` distinct values seen; everything else becomes `fallback`. The
 * label then has at most `maxValues + 1` values, whatever `accept` lets through.
 */
export function boundedLabel(options: BoundedLabelOptions): LabelBound {
  const { accept, maxValues, fallback } = options;
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= maxValues || hasControlCharacter(value) || !accept(value)) return fallback;
    seen.add(value);
    return value;
  };
}
