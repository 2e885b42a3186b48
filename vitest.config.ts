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
    // Two cores, but many suites wait on real time (ack waits, outages, kill -9 and restart): four
    // workers keep both cores busy (whole suite 480 s -> 409 s, 178% CPU, no new failures; one run).
    maxWorkers: 4,
  },
});
