import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { BlocksError } from './errors.ts';

/** One client-visible error code: its HTTP status and the short title docs/errors.md shows. */
export interface ErrorEntry {
  readonly status: number;
  readonly title: string;
}

const FILE = Symbol('blocks.errors.file');
const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A module's error codes: the plain map it reads as (`errors.CODE.status`, `keyof typeof errors`).
 * The file that defined it rides along unseen by `Object.entries` and by the type, so docs/errors.md
 * can be checked section by section.
 */
export type ErrorCatalogue<Code extends string = string> = Readonly<Record<Code, ErrorEntry>>;

/**
 * Declares a catalogue; pass `import.meta.url` of the defining file. A catalogue reaches the docs
 * and the errors test only through a module manifest (`errors`), and that test fails for one
 * defined but not registered.
 */
export function defineErrors<const Entries extends Record<string, ErrorEntry>>(moduleUrl: string, entries: Entries): Readonly<Entries> {
  const catalogue = { ...entries };
  Object.defineProperty(catalogue, FILE, { value: relative(PROJECT_ROOT, fileURLToPath(moduleUrl)).replaceAll('\\', '/') });
  return Object.freeze(catalogue);
}

/** The project-relative path of the file that defined `catalogue` (`src/gateway/errors.ts`). */
export function catalogueFile(catalogue: ErrorCatalogue): string {
  const file = (catalogue as { [FILE]?: string })[FILE];
  if (file === undefined) throw new Error('an error catalogue must be made with defineErrors()');
  return file;
}

/** An error of `catalogue`: only its codes type-check, and status comes from the catalogue. */
export function raise<Entries extends ErrorCatalogue>(
  catalogue: Entries,
  code: Extract<keyof Entries, string>,
  detail: string,
  options?: { cause?: unknown; extensions?: Record<string, unknown> },
): BlocksError {
  return new BlocksError(code, (catalogue[code] as ErrorEntry).status, detail, options);
}
