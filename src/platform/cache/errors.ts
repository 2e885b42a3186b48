import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/** Codes the cache raises; each is listed in docs/errors.md. */
export const CACHE_ERRORS = defineErrors(import.meta.url, {
  CACHE_UNAVAILABLE: {
    status: 503,
    title: 'The shared cache (Redis) did not answer',
  },
});

/**
 * A write (`set`, `delete`) to the shared cache failed or timed out. Reads never throw it: a read
 * that cannot reach Redis is a miss. The key stays off the client-visible detail (it may name a
 * user); it is on `key` for logs.
 */
export class CacheUnavailableError extends BlocksError {
  readonly operation: 'set' | 'delete';
  readonly key: string;

  constructor(operation: 'set' | 'delete', key: string, cause: unknown) {
    super('CACHE_UNAVAILABLE', CACHE_ERRORS.CACHE_UNAVAILABLE.status, `shared cache ${operation} failed`, {
      cause,
      extensions: { operation },
    });
    this.name = 'CacheUnavailableError';
    this.operation = operation;
    this.key = key;
  }
}
