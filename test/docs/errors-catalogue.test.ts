import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testRegistry } from '../support/registry.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEFAULT_DOC = join(ROOT, 'docs/errors.md');

/** Every catalogue the registry knows, with the file that defines it and the document listing its codes. */
const CATALOGUES = testRegistry.errorCatalogues;

/** Every file under `dir` (src/ and the test support's modules) that defines a catalogue. */
function filesDefiningCatalogues(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return filesDefiningCatalogues(path);
    return name.endsWith('.ts') && /\bdefineErrors\(import\.meta\.url/.test(readFileSync(path, 'utf8')) ? [relative(ROOT, path)] : [];
  });
}

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

const docs = [...new Set([DEFAULT_DOC, ...CATALOGUES.flatMap(({ doc }) => (doc === undefined ? [] : [doc]))])];
const documented = docs.flatMap((doc) => parseErrorsDoc(readFileSync(doc, 'utf8')).map((row) => ({ ...row, doc })));
const catalogued = CATALOGUES.flatMap(({ file, catalogue, doc }) =>
  Object.entries(catalogue).map(([code, entry]) => ({ code, file, doc: doc ?? DEFAULT_DOC, status: entry.status, title: entry.title })),
);

describe('docs/errors.md and the error catalogues', () => {
  it('reaches every catalogue through a module manifest: one defined but not registered fails here', () => {
    const defined = [...filesDefiningCatalogues(join(ROOT, 'src')), ...filesDefiningCatalogues(join(ROOT, 'test/support'))].sort();
    const registered = [...new Set(CATALOGUES.map(({ file }) => file))].sort();
    expect(defined.length).toBeGreaterThan(10);
    expect(
      defined.filter((file) => !registered.includes(file)),
      'catalogues no manifest lists (`errors` of its module)',
    ).toEqual([]);
    expect(registered.filter((file) => !defined.includes(file))).toEqual([]);
  });

  it('documents every catalogued code, in the section of the file that defines it', () => {
    const missing = catalogued
      .filter(
        ({ code, file, doc }) => !documented.some((row) => row.doc === doc && row.code === code && row.section.includes(`\`${file}\``)),
      )
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
