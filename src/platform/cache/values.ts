/**
 * What both cache adapters store: the JSON text of a value, so a caller can never reach the cached
 * copy through a reference, and the in-process cache refuses exactly what Redis would.
 */

/** Serialises `value`; throws a TypeError for what JSON cannot carry (undefined, functions, BigInt). */
export function serialise(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`cache value for "${key}" is not JSON-serialisable`, {
      cause: error,
    });
  }
  if (text === undefined) throw new TypeError(`cache value for "${key}" is not JSON-serialisable (got ${typeof value})`);
  return text;
}

export const deserialise = <T>(text: string): T => JSON.parse(text) as T;

/**
 * Resolves a time to live: the per-call value, else the cache default. 0 means "never expires".
 * Throws a RangeError for a negative or non-finite value.
 */
export function resolveTtl(ttlMs: number | undefined, defaultTtlMs: number): number {
  const ttl = ttlMs ?? defaultTtlMs;
  if (!Number.isFinite(ttl) || ttl < 0) throw new RangeError(`cache ttlMs must be a non-negative number, got ${ttl}`);
  return Math.ceil(ttl);
}

export function requirePositiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
