import { createHash } from 'node:crypto';
import type { Cache } from '../../../platform/cache/port.ts';
import type { ChatCompletion } from '../providers/index.ts';
import { canonicalRequest, type ChatCompletionBodyType } from './chat-request.ts';
import { invalidCacheTtl } from './errors.ts';

/** A cached answer and who produced it (for the response headers of a hit). */
export interface CachedAnswer {
  readonly completion: ChatCompletion;
  readonly model: string;
  readonly provider: string;
  readonly deployment: string;
}

export const CACHE_TTL_HEADER = 'x-blocks-cache-ttl';

/**
 * How long to cache this request's answer, in ms, or 0 when it did not opt in. The header
 * `x-blocks-cache-ttl` (seconds, or `default`) wins over `blocks.cache_ttl` / `blocks.cache`;
 * a TTL is capped at `max_ttl`; streams are never cached.
 * @throws BlocksError INVALID_CACHE_TTL for a header that is neither a whole number nor `default`.
 */
export function cacheTtlOf(
  body: ChatCompletionBodyType,
  header: string | string[] | undefined,
  settings: { readonly default_ttl: number; readonly max_ttl: number },
): number {
  if (body.stream === true) return 0;
  let seconds: number | 'default' | undefined;
  if (header !== undefined) {
    const text = (Array.isArray(header) ? header.join(',') : header).trim();
    if (text === 'default') seconds = 'default';
    else if (/^\d{1,9}$/.test(text)) seconds = Number(text);
    else throw invalidCacheTtl(text);
  } else if (body.blocks?.cache_ttl !== undefined) {
    seconds = body.blocks.cache_ttl;
  } else if (body.blocks?.cache === true) {
    seconds = 'default';
  }
  if (seconds === undefined) return 0;
  const ms = seconds === 'default' ? settings.default_ttl : seconds * 1000;
  return Math.min(ms, settings.max_ttl);
}

/**
 * The cache key of a request for a tenant: SHA-256 of the tenant and the canonical request, so
 * equal requests of one tenant share an answer and no answer ever crosses tenants.
 */
export function cacheKeyOf(tenant: string, body: ChatCompletionBodyType): string {
  const digest = createHash('sha256').update(tenant).update('\n').update(canonicalRequest(body)).digest('hex');
  return `ai:chat:${tenant}:${digest}`;
}

export interface ResponseCache {
  get(key: string): Promise<CachedAnswer | undefined>;
  set(key: string, answer: CachedAnswer, ttlMs: number): Promise<void>;
}

export const createResponseCache = (cache: Cache): ResponseCache => ({
  get: (key) => cache.get<CachedAnswer>(key),
  set: (key, answer, ttlMs) => cache.set(key, answer, { ttlMs }),
});
