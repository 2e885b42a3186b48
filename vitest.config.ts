import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Template databases (a blank and a migrated PGlite, a migrated PostgreSQL) made once per run and
    // copied by every test that needs one: see test/support/templates.ts.
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The machine has two cores; more workers only make the real-service suites fight for them.
    maxWorkers: 2,
  },
});
