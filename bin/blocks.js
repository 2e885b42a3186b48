#!/usr/bin/env node
// Runs the TypeScript CLI directly: Node 24 strips types. `npx blocks` puts the project's Node 24 first on PATH.
await import('../src/cli.ts');
