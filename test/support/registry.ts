import { createRegistry } from '../../src/modules.ts';
import { exampleModule } from './example-module/index.ts';

/**
 * The registry every test runs: the built-in modules and the example module, which stands for
 * the next capability: suites that walk the registry or the route inventory cover it without edits.
 */
export const testRegistry = createRegistry([exampleModule]);

/** The scopes and roles of {@link testRegistry}. */
export const scopes = testRegistry.scopes;

/** Every module's migrations, in order: what a test database is migrated with. */
export const MIGRATIONS = testRegistry.migrations;
