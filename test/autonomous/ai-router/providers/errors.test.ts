import { describe, expect, it } from 'vitest';
import { ProviderError, errorForStatus, parseRetryAfter, providerErrors } from '../../../../src/autonomous/ai-router/providers/errors.ts';
import { BlocksError } from '../../../../src/platform/errors.ts';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('30', now)).toBe(30_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
  });

  it('reads an HTTP date, and a date in the past as 0', () => {
    expect(parseRetryAfter('Wed, 25 Nov 2026 12:00:45 GMT', now)).toBe(45_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now)).toBe(0);
  });

  it('gives undefined for an absent or unreadable value', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('errorForStatus', () => {
  const classify = (status: number, headers: Record<string, string> = {}): ProviderError =>
    errorForStatus('p', status, new Headers(headers), '{"error":"x"}');

  it('lets a router fall back on 408, 429 and 5xx but not on other 4xx', () => {
    expect([408, 429, 500, 502, 503, 529].map((status) => [classify(status).kind, classify(status).retryable])).toEqual([
      ['timeout', true],
      ['rate_limited', true],
      ['server', true],
      ['server', true],
      ['server', true],
      ['server', true],
    ]);
    for (const status of [400, 401, 403, 404, 413, 422]) expect(classify(status)).toMatchObject({ kind: 'client', retryable: false });
  });

  it('prefers retry-after-ms over retry-after, and keeps Retry-After on a 503', () => {
    expect(classify(429, { 'retry-after-ms': '250', 'retry-after': '9' }).retryAfterMs).toBe(250);
    expect(classify(429, { 'retry-after': '9' }).retryAfterMs).toBe(9000);
    expect(classify(503, { 'retry-after': '2' }).retryAfterMs).toBe(2000);
    expect(classify(429).retryAfterMs).toBeUndefined();
  });

  it('is a BlocksError with its catalogue status and the provider status in the problem extensions', () => {
    const error = classify(503, { 'retry-after': '2' });
    expect(error).toBeInstanceOf(BlocksError);
    expect(error.status).toBe(providerErrors.PROVIDER_SERVER_ERROR.status);
    expect(error.extensions).toEqual({ kind: 'server', provider: 'p', provider_status: 503, retry_after_ms: 2000 });
    expect(error.detail).toContain('{"error":"x"}');
  });

  it('gives each kind a catalogued code, and a malformed answer 502', () => {
    const kinds = ['timeout', 'rate_limited', 'server', 'bad_response', 'client', 'unreachable'] as const;
    for (const kind of kinds) {
      const error = new ProviderError(kind, 'x');
      expect(Object.keys(providerErrors)).toContain(error.code);
      expect(error.status).toBe(providerErrors[error.code as keyof typeof providerErrors].status);
    }
    expect(new ProviderError('bad_response', 'x').status).toBe(502);
  });
});
