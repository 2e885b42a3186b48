import { responseCacheSuite } from './cache.suite.ts';

responseCacheSuite('in-process cache, PGlite', async () => ({ options: {}, storedKeys: async () => null, cleanup: async () => undefined }));
