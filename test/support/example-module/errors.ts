import { defineErrors } from '../../../src/platform/define-errors.ts';

/** The example module's codes, documented in ./errors.md (its manifest's `errorsDoc`). */
export const exampleErrors = defineErrors(import.meta.url, {
  EXAMPLE_NOTE_NOT_FOUND: { status: 404, title: 'Note not found' },
});
