import { describe, expect, it } from 'vitest';
import {
  MAX_PROVIDER_TEXT_CHARS,
  ProviderError,
  boundedText,
  errorForStatus,
  parseRetryAfter,
  providerErrors,
  providerMessageOf,
} from '../../../../src/autonomous/ai-router/providers/errors.ts';
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

  it('lets a router fall back on 401, 403, 408, 429 and 5xx but not on other 4xx', () => {
    expect([408, 429, 500, 502, 503, 529].map((status) => [classify(status).kind, classify(status).retryable])).toEqual([
      ['timeout', true],
      ['rate_limited', true],
      ['server', true],
      ['server', true],
      ['server', true],
      ['server', true],
    ]);
    for (const status of [400, 404, 413, 422]) expect(classify(status)).toMatchObject({ kind: 'client', retryable: false });
    for (const status of [401, 403]) expect(classify(status)).toMatchObject({ kind: 'auth', retryable: true, status: 502 });
  });

  it("blames a refused key (401, 403) on Blocks: 502 PROVIDER_AUTH_FAILED, nothing of the provider's words or status for the caller", () => {
    const said = '{"error":{"message":"Incorrect API key provided: sk-live-1234","type":"invalid_request_error"}}';
    for (const status of [401, 403]) {
      const error = errorForStatus('openai', status, new Headers(), said);
      expect(error.code).toBe('PROVIDER_AUTH_FAILED');
      expect(error.detail).not.toMatch(/sk-live|Incorrect/);
      expect(error.extensions).toEqual({ kind: 'auth', provider: 'openai' });
      expect(error.providerStatus).toBe(status);
      // Kept for the log and the call record.
      expect(error.providerBody).toContain('Incorrect API key provided: sk-live-1234');
    }
  });

  it("names what was wrong with a refused request (400) by the body's error message alone", () => {
    const error = errorForStatus(
      'p',
      400,
      new Headers(),
      JSON.stringify({ debug: 'stack at app.py:42', error: { message: "'messages' is required", internal: 'trace-7f3a' } }),
    );
    expect(error.detail).toBe("p rejected the request (400): 'messages' is required");
    expect(error.providerBody).toContain('trace-7f3a');
    expect(errorForStatus('p', 400, new Headers(), '<html>nginx at 10.0.0.5</html>').detail).toBe('p rejected the request (400)');
    expect(errorForStatus('p', 500, new Headers(), 'Traceback (most recent call last)').detail).toBe('p answered 500');
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
    expect(error.detail).toBe('p answered 503: x');
    expect(error.providerBody).toBe('{"error":"x"}');
  });

  it('gives each kind a catalogued code, and a malformed answer 502', () => {
    const kinds = ['timeout', 'rate_limited', 'server', 'bad_response', 'client', 'auth', 'unreachable', 'egress_refused'] as const;
    for (const kind of kinds) {
      const error = new ProviderError(kind, 'x');
      expect(Object.keys(providerErrors)).toContain(error.code);
      expect(error.status).toBe(providerErrors[error.code as keyof typeof providerErrors].status);
    }
    expect(new ProviderError('bad_response', 'x').status).toBe(502);
  });
});

describe('providerMessageOf and boundedText', () => {
  it('reads the error message of OpenAI, Anthropic, Ollama and vLLM bodies, and nothing of any other body', () => {
    expect(providerMessageOf('{"error":{"message":"too long","type":"invalid_request_error"}}')).toBe('too long');
    expect(providerMessageOf('{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}')).toBe(
      'max_tokens: too large',
    );
    expect(providerMessageOf('{"error":"model not found"}')).toBe('model not found');
    expect(providerMessageOf('{"object":"error","message":"bad temperature"}')).toBe('bad temperature');
    for (const body of [
      '<html>oops</html>',
      '',
      '[1,2]',
      '{"error":{"code":5}}',
      '{"detail":"internal"}',
      '{"error":{"message":" \\u0007 "}}',
    ])
      expect(providerMessageOf(body), body).toBeUndefined();
  });

  it('strips control, format and line-separator characters, and bounds the text without splitting a character', () => {
    expect(boundedText('bad\u001b[31m value\r\nInjected: line\u202e\u0000 end')).toBe('bad [31m value Injected: line end');
    const long = boundedText('😀'.repeat(MAX_PROVIDER_TEXT_CHARS + 10));
    expect(Array.from(long)).toHaveLength(MAX_PROVIDER_TEXT_CHARS);
    expect(long.endsWith('😀…')).toBe(true);
    expect(boundedText('x'.repeat(1_000_000)).length).toBeLessThanOrEqual(MAX_PROVIDER_TEXT_CHARS);
  });
});
