import type { Static, TSchema } from 'typebox';
import type { Config } from './schema.ts';

/**
 * A module's section of a loaded configuration, typed by its schema. Modules get theirs from their
 * context; this is for the code around them (tests, benchmarks, the CLI) that holds the whole.
 * @throws Error when the configuration was loaded without the section
 */
export function sectionOf<Schema extends TSchema>(
  config: Config,
  section: { readonly key: string; readonly schema: Schema },
): Static<Schema> {
  const value = (config as unknown as Readonly<Record<string, unknown>>)[section.key];
  if (value === undefined) throw new Error(`the configuration has no ${section.key} section: load it with the module's registry`);
  return value as Static<Schema>;
}
