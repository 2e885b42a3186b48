import { defineErrors } from '../define-errors.ts';

/** Refusals of the kernel's ready-made body parsers (content-types.ts); listed in docs/errors.md. */
export const contentTypeErrors = defineErrors(import.meta.url, {
  MALFORMED_YAML: { status: 400, title: 'Body is not valid YAML' },
  YAML_TOO_COMPLEX: { status: 400, title: 'YAML body nests too deeply or expands too far through aliases' },
  INVALID_CLOUDEVENT: { status: 400, title: 'Body is not a structured-mode CloudEvent' },
});
