import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aiRouterErrors } from '../../src/autonomous/ai-router/errors.ts';
import { gatewayErrors } from '../../src/gateway/errors.ts';
import { busErrors } from '../../src/platform/bus/errors.ts';
import { CACHE_ERRORS } from '../../src/platform/cache/errors.ts';
import { httpErrors } from '../../src/platform/http/errors.ts';
import { RESILIENCE_ERRORS } from '../../src/platform/resilience/errors.ts';
import { RATE_LIMIT_ERRORS } from '../../src/platform/rate-limit/errors.ts';
import { providerErrors } from '../../src/autonomous/ai-router/providers/index.ts';
import { proxyErrors } from '../../src/autonomous/ai-router/proxy/index.ts';
import { budgetErrors } from '../../src/autonomous/ai-router/budgets/index.ts';
import { learningErrors } from '../../src/autonomous/ai-router/learning/index.ts';
import { identityErrors } from '../../src/core/identity/index.ts';
import { authErrors } from '../../src/platform/auth/errors.ts';
import { tokenErrors } from '../../src/core/identity/tokens/index.ts';
import { secretErrors } from '../../src/platform/secrets/index.ts';
import { idempotencyErrors } from '../../src/platform/idempotency/index.ts';

type Catalogue = Readonly<Record<string, { readonly status: number; readonly title: string }>>;

/** Every catalogue of client-visible codes, by the file that defines it (its section in docs/errors.md names that file). */
const CATALOGUES: ReadonlyArray<readonly [file: string, catalogue: Catalogue]> = [
  ['src/platform/http/errors.ts', httpErrors],
  ['src/gateway/errors.ts', gatewayErrors],
  ['src/autonomous/ai-router/errors.ts', aiRouterErrors],
  ['src/platform/resilience/errors.ts', RESILIENCE_ERRORS],
  ['src/platform/cache/errors.ts', CACHE_ERRORS],
  ['src/platform/rate-limit/errors.ts', RATE_LIMIT_ERRORS],
  ['src/platform/bus/errors.ts', busErrors],
  ['src/autonomous/ai-router/providers/errors.ts', providerErrors],
  ['src/autonomous/ai-router/proxy/errors.ts', proxyErrors],
  ['src/autonomous/ai-router/budgets/errors.ts', budgetErrors],
  ['src/autonomous/ai-router/learning/errors.ts', learningErrors],
  ['src/core/identity/errors.ts', identityErrors],
  ['src/platform/auth/errors.ts', authErrors],
  ['src/core/identity/tokens/errors.ts', tokenErrors],
  ['src/platform/secrets/errors.ts', secretErrors],
  ['src/platform/idempotency/errors.ts', idempotencyErrors],
];

interface DocumentedCode {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  /** The `## ` heading the row sits under. */
  readonly section: string;
}

/** Rows of the form `| \`CODE\` | 503 | Title | Meaning |`, with the heading above each. */
function parseErrorsDoc(markdown: string): DocumentedCode[] {
  const rows: DocumentedCode[] = [];
  let section = '';
  for (const line of markdown.split('\n')) {
    if (line.startsWith('## ')) section = line.slice(3).trim();
    const row = /^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|\s*([^|]*?)\s*\|/.exec(line);
    if (row) rows.push({ code: row[1] as string, status: Number(row[2]), title: row[3] as string, section });
  }
  return rows;
}

const documented = parseErrorsDoc(readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'));
const catalogued = CATALOGUES.flatMap(([file, catalogue]) =>
  Object.entries(catalogue).map(([code, entry]) => ({ code, file, status: entry.status, title: entry.title })),
);

describe('docs/errors.md and the error catalogues', () => {
  it('documents every catalogued code, in the section of the file that defines it', () => {
    const missing = catalogued
      .filter(({ code, file }) => !documented.some((row) => row.code === code && row.section.includes(`\`${file}\``)))
      .map(({ code, file }) => `${code} (${file})`);
    expect(missing, 'codes missing from docs/errors.md or listed under another module').toEqual([]);
  });

  it('names no code that no catalogue has', () => {
    const known = new Set(catalogued.map(({ code }) => code));
    const unknown = documented.filter(({ code }) => !known.has(code)).map(({ code, section }) => `${code} (under "${section}")`);
    expect(unknown, 'codes in docs/errors.md that no catalogue defines').toEqual([]);
  });

  it('gives each code the status and title of its catalogue', () => {
    const differing = catalogued.flatMap(({ code, status, title }) =>
      documented
        .filter((row) => row.code === code && (row.status !== status || row.title !== title))
        .map((row) => `${code}: catalogue ${status} "${title}", doc ${row.status} "${row.title}"`),
    );
    expect(differing).toEqual([]);
  });

  it('lists each code once, and no two catalogues share a code', () => {
    const twice = (codes: string[]): string[] => codes.filter((code, index) => codes.indexOf(code) !== index);
    expect(twice(documented.map(({ code }) => code)), 'listed twice in docs/errors.md').toEqual([]);
    expect(twice(catalogued.map(({ code }) => code)), 'defined by two catalogues').toEqual([]);
  });

  it('uses codes of the stable form and statuses a client can receive', () => {
    for (const { code, status } of catalogued) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      expect(status >= 400 && status <= 599, `${code} has status ${status}`).toBe(true);
    }
  });
});
