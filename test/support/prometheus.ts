/** One sample line of a Prometheus text exposition. */
export interface Sample {
  readonly name: string;
  /** Label values unescaped. */
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
// The three escapes the format defines (\\, \", \n); nothing else may follow a backslash. Control
// characters are refused too: the format would carry them raw, and scrapers differ on what they do with them.
const LABEL_VALUE = '(?:[^"\\\\\\n\\u0000-\\u001f\\u007f]|\\\\[\\\\"n])*';
// Go's ParseFloat, which Prometheus parses values with, takes NaN and Inf in any case (prom-client writes `Nan`).
const NUMBER = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[Nn][Aa][Nn]|[+-][Ii][Nn][Ff])';
const PAIR = `(${LABEL_NAME})="(${LABEL_VALUE})"`;
const SAMPLE = new RegExp(
  `^(${METRIC_NAME})(?:\\{((?:${LABEL_NAME}="${LABEL_VALUE}")(?:,${LABEL_NAME}="${LABEL_VALUE}")*,?)?\\})? (${NUMBER})(?: -?\\d+)?$`,
);
const HELP = new RegExp(`^# HELP ${METRIC_NAME}(?: (?:[^\\\\\\n\\u0000-\\u001f\\u007f]|\\\\[\\\\n])*)?$`);
const TYPE = new RegExp(`^# TYPE ${METRIC_NAME} (?:counter|gauge|histogram|summary|untyped)$`);

const unescape = (value: string): string => value.replace(/\\([\\"n])/g, (_, c: string) => (c === 'n' ? '\n' : c));

/**
 * Parses a Prometheus text exposition (format 0.0.4) strictly: every line must be a HELP, a TYPE
 * or a sample line, with label values escaped as the format says and free of control characters.
 * @throws Error naming the first line that is not.
 */
export function parseExposition(text: string): Sample[] {
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition does not end with a line feed');
  const samples: Sample[] = [];
  text
    .slice(0, -1)
    .split('\n')
    .forEach((line, index) => {
      // Empty lines are allowed between metric families.
      if (line === '' || HELP.test(line) || TYPE.test(line)) return;
      const match = SAMPLE.exec(line);
      if (match === null) throw new Error(`line ${index + 1} is not valid exposition: ${JSON.stringify(line)}`);
      const labels: Record<string, string> = {};
      for (const pair of (match[2] ?? '').matchAll(new RegExp(PAIR, 'g'))) labels[pair[1] as string] = unescape(pair[2] as string);
      const raw = match[3] as string;
      const value = /nan/i.test(raw) ? Number.NaN : /inf/i.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw);
      samples.push({ name: match[1] as string, labels, value });
    });
  return samples;
}

/** `name{labels}` of a sample, labels in the order given: what makes it one series. */
export const seriesOf = (sample: Sample): string => `${sample.name}${JSON.stringify(sample.labels)}`;
