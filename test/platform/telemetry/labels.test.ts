import { describe, expect, it } from 'vitest';
import { boundedLabel } from '../../../src/platform/telemetry/labels.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';
import { parseExposition } from '../../support/prometheus.ts';

describe('bounded labels', () => {
  it('passes accepted values and counts everything else under the fallback', () => {
    const label = boundedLabel({ accept: (v) => v.startsWith('gpt-'), maxValues: 10, fallback: 'unknown' });
    expect(label('gpt-4o')).toBe('gpt-4o');
    expect(label('random-name')).toBe('unknown');
    expect(label('')).toBe('unknown');
  });

  it('never passes control characters, even where `accept` would', () => {
    const label = boundedLabel({ accept: () => true, maxValues: 10, fallback: 'unknown' });
    for (const value of ['a\u0000b', 'a\nb', 'a\rb', 'a\tb', '\u007f']) expect(label(value), JSON.stringify(value)).toBe('unknown');
    expect(label('quote"and\\backslash')).toBe('quote"and\\backslash');
  });

  it('has at most maxValues + 1 values whatever it is given', () => {
    const label = boundedLabel({ accept: () => true, maxValues: 3, fallback: 'other' });
    const seen = new Set(Array.from({ length: 1000 }, (_, i) => label(`v${i}`)));
    expect(seen).toEqual(new Set(['v0', 'v1', 'v2', 'other']));
    // A value already passed keeps its series.
    expect(label('v1')).toBe('v1');
  });
});

describe("prom-client's exposition of label values (why labels must not come from requests)", () => {
  it('escapes backslash, double quote and line feed as the text format says, but writes NUL and carriage return raw', async () => {
    const metrics = createMetrics();
    const counter = metrics.counter('escape_probe_total', 'Probe', ['v']);
    counter.inc({ v: 'back\\slash "quoted" line\nfeed' });
    const text = await metrics.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith('escape_probe_total{')) as string;
    expect(line).toBe('escape_probe_total{v="back\\\\slash \\"quoted\\" line\\nfeed"} 1');
    expect(parseExposition(text).find((s) => s.name === 'escape_probe_total')?.labels['v']).toBe('back\\slash "quoted" line\nfeed');

    counter.inc({ v: 'nul\u0000carriage\r' });
    const raw = await metrics.registry.metrics();
    expect(raw).toContain('v="nul\u0000carriage\r"');
    expect(() => parseExposition(raw)).toThrow(/not valid exposition/);
  });
});
