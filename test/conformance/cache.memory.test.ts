import { createMemoryCache } from '../../src/platform/cache/memory.ts';
import { cacheSuite } from './cache.suite.ts';

cacheSuite('memory', ({ maxEntries, defaultTtlMs }) => createMemoryCache({ maxEntries, defaultTtlMs }));
