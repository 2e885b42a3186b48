import { BlocksError } from '../../../platform/errors.ts';

/** Why a provider call failed; decides whether a router may try the next candidate. */
export type ProviderErrorKind = 'timeout' | 'rate_limited' | 'server' | 'bad_response' | 'client' | 'unreachable' | 'egress_refused';

/**
 * Every code a provider adapter raises, with the HTTP status a client gets when the error is
 * surfaced (after fallbacks ran out) and a title for docs/errors.md.
 */
export const providerErrors = {
  PROVIDER_TIMEOUT: { status: 504, title: 'Provider did not answer in time' },
  PROVIDER_RATE_LIMITED: { status: 429, title: 'Provider rate limited the call' },
  PROVIDER_SERVER_ERROR: { status: 502, title: 'Provider failed' },
  PROVIDER_BAD_RESPONSE: { status: 502, title: 'Provider sent a malformed response' },
  PROVIDER_REJECTED_REQUEST: { status: 400, title: 'Provider rejected the request' },
  PROVIDER_UNREACHABLE: { status: 502, title: 'Provider unreachable' },
  PROVIDER_EGRESS_REFUSED: { status: 502, title: 'Provider address not allowed' },
} as const;

export type ProviderErrorCode = keyof typeof providerErrors;

const CODE_OF_KIND: Readonly<Record<ProviderErrorKind, ProviderErrorCode>> = {
  timeout: 'PROVIDER_TIMEOUT',
  rate_limited: 'PROVIDER_RATE_LIMITED',
  server: 'PROVIDER_SERVER_ERROR',
  bad_response: 'PROVIDER_BAD_RESPONSE',
  client: 'PROVIDER_REJECTED_REQUEST',
  unreachable: 'PROVIDER_UNREACHABLE',
  egress_refused: 'PROVIDER_EGRESS_REFUSED',
};

/**
 * A provider call that failed. `retryable` is true for timeout, rate_limited, server, unreachable
 * and egress_refused (a deployment the egress policy forbids; another may be allowed): another
 * attempt, or another candidate, may succeed. A `client` error (a 4xx other
 * than 408/429) would fail the same way anywhere, so a router must not fall back on it.
 */
export class ProviderError extends BlocksError {
  readonly kind: ProviderErrorKind;
  readonly retryable: boolean;
  /** The provider's HTTP status, when it answered with one. */
  readonly providerStatus: number | undefined;
  /** How long the provider asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: ProviderErrorKind,
    detail: string,
    options?: { providerStatus?: number; retryAfterMs?: number; cause?: unknown; provider?: string },
  ) {
    const code = CODE_OF_KIND[kind];
    const extensions: Record<string, unknown> = { kind };
    if (options?.provider !== undefined) extensions['provider'] = options.provider;
    if (options?.providerStatus !== undefined) extensions['provider_status'] = options.providerStatus;
    if (options?.retryAfterMs !== undefined) extensions['retry_after_ms'] = options.retryAfterMs;
    super(code, providerErrors[code].status, detail, { cause: options?.cause, extensions });
    this.name = 'ProviderError';
    this.kind = kind;
    this.retryable = kind !== 'client' && kind !== 'bad_response';
    this.providerStatus = options?.providerStatus;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export const isProviderError = (error: unknown): error is ProviderError => error instanceof ProviderError;

/**
 * Milliseconds from a Retry-After value: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // Date.parse reads bare numbers ("-5") as years; an HTTP date always names its day and month.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The error for a non-2xx provider answer, classified by status. */
export function errorForStatus(provider: string, status: number, headers: Headers, bodyText: string): ProviderError {
  const excerpt = bodyText.length > 300 ? `${bodyText.slice(0, 300)}…` : bodyText;
  const detail = `${provider} answered ${status}${excerpt === '' ? '' : `: ${excerpt}`}`;
  if (status === 429) {
    // OpenAI also sends the finer-grained retry-after-ms; prefer it when present.
    const ms = headers.get('retry-after-ms');
    const retryAfterMs = ms !== null && /^\d+$/.test(ms.trim()) ? Number(ms) : parseRetryAfter(headers.get('retry-after'));
    return new ProviderError('rate_limited', detail, { provider, providerStatus: status, retryAfterMs });
  }
  if (status === 408) return new ProviderError('timeout', detail, { provider, providerStatus: status });
  // Redirects are never followed (a provider could send the call on to an internal address): the answer is not one.
  if (status >= 300 && status < 400) {
    return new ProviderError('bad_response', `${provider} answered ${status}, a redirect, which is not followed`, {
      provider,
      providerStatus: status,
    });
  }
  if (status >= 500) {
    return new ProviderError('server', detail, {
      provider,
      providerStatus: status,
      retryAfterMs: parseRetryAfter(headers.get('retry-after')),
    });
  }
  return new ProviderError('client', detail, { provider, providerStatus: status });
}
