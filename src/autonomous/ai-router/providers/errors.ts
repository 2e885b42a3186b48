import { BlocksError } from '../../../platform/errors.ts';
import { defineErrors } from '../../../platform/define-errors.ts';

/** Why a provider call failed; decides whether a router may try the next candidate. */
export type ProviderErrorKind =
  'timeout' | 'rate_limited' | 'server' | 'bad_response' | 'client' | 'auth' | 'unreachable' | 'egress_refused';

/**
 * Every code a provider adapter raises, with the HTTP status a client gets when the error is
 * surfaced (after fallbacks ran out) and a title for docs/errors.md.
 */
export const providerErrors = defineErrors(import.meta.url, {
  PROVIDER_TIMEOUT: { status: 504, title: 'Provider did not answer in time' },
  PROVIDER_RATE_LIMITED: { status: 429, title: 'Provider rate limited the call' },
  PROVIDER_SERVER_ERROR: { status: 502, title: 'Provider failed' },
  PROVIDER_BAD_RESPONSE: { status: 502, title: 'Provider sent a malformed response' },
  PROVIDER_REJECTED_REQUEST: { status: 400, title: 'Provider rejected the request' },
  PROVIDER_AUTH_FAILED: { status: 502, title: "Provider refused Blocks' credentials" },
  PROVIDER_UNREACHABLE: { status: 502, title: 'Provider unreachable' },
  PROVIDER_EGRESS_REFUSED: { status: 502, title: 'Provider address not allowed' },
});

export type ProviderErrorCode = keyof typeof providerErrors;

const CODE_OF_KIND: Readonly<Record<ProviderErrorKind, ProviderErrorCode>> = {
  timeout: 'PROVIDER_TIMEOUT',
  rate_limited: 'PROVIDER_RATE_LIMITED',
  server: 'PROVIDER_SERVER_ERROR',
  bad_response: 'PROVIDER_BAD_RESPONSE',
  client: 'PROVIDER_REJECTED_REQUEST',
  auth: 'PROVIDER_AUTH_FAILED',
  unreachable: 'PROVIDER_UNREACHABLE',
  egress_refused: 'PROVIDER_EGRESS_REFUSED',
};

/**
 * A provider call that failed. `retryable` is true for timeout, rate_limited, server, auth (the
 * provider refused the key Blocks sent: another deployment has its own), unreachable and
 * egress_refused (a deployment the egress policy forbids; another may be allowed): another
 * attempt, or another candidate, may succeed. A `client` error (a 4xx other than 401/403/408/429)
 * would fail the same way anywhere, so a router must not fall back on it.
 */
export class ProviderError extends BlocksError {
  readonly kind: ProviderErrorKind;
  readonly retryable: boolean;
  /** The provider's HTTP status, when it answered with one. */
  readonly providerStatus: number | undefined;
  /** How long the provider asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;
  /**
   * What the provider answered, made safe by {@link boundedText}: for the log and the call record,
   * never for the caller (neither `detail` nor the problem's extensions carry it).
   */
  readonly providerBody: string | undefined;

  constructor(
    kind: ProviderErrorKind,
    detail: string,
    options?: { providerStatus?: number; retryAfterMs?: number; cause?: unknown; provider?: string; providerBody?: string },
  ) {
    const code = CODE_OF_KIND[kind];
    const extensions: Record<string, unknown> = { kind };
    if (options?.provider !== undefined) extensions['provider'] = options.provider;
    // Which of our keys' refusals it was (401 or 403) is the operator's business, not the caller's.
    if (options?.providerStatus !== undefined && kind !== 'auth') extensions['provider_status'] = options.providerStatus;
    if (options?.retryAfterMs !== undefined) extensions['retry_after_ms'] = options.retryAfterMs;
    super(code, providerErrors[code].status, detail, { cause: options?.cause, extensions });
    this.name = 'ProviderError';
    this.kind = kind;
    this.retryable = kind !== 'client' && kind !== 'bad_response';
    this.providerStatus = options?.providerStatus;
    this.retryAfterMs = options?.retryAfterMs;
    this.providerBody = options?.providerBody;
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

/** Most characters of a provider's own words that Blocks passes on (its error message) or keeps (its error body). */
export const MAX_PROVIDER_TEXT_CHARS = 500;

/**
 * Text a provider sent, made safe to show or log: control, format and line-separator characters
 * (terminal escapes, bidi overrides, CR/LF that would forge log lines) become spaces, runs of
 * whitespace one space, and it is cut to `max` characters (code points, never half of one).
 */
export function boundedText(text: string, max: number = MAX_PROVIDER_TEXT_CHARS): string {
  const clean = text
    .slice(0, max * 4)
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\s]+/gu, ' ')
    .trim();
  const chars = Array.from(clean);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : clean;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The error message of a provider's error body, made safe by {@link boundedText}: `error.message`
 * (OpenAI, Anthropic), or `error` or `message` when it is text (Ollama, vLLM). Undefined when the
 * body is not JSON or carries no message: nothing else of it is ever passed on.
 */
export function providerMessageOf(bodyText: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(bodyText) as unknown;
  } catch {
    return undefined; // an HTML error page, a proxy's text: no message a caller could act on
  }
  if (!isRecord(body)) return undefined;
  const error = body['error'];
  const message = isRecord(error) ? error['message'] : typeof error === 'string' ? error : body['message'];
  if (typeof message !== 'string') return undefined;
  const text = boundedText(message);
  return text === '' ? undefined : text;
}

/**
 * The error for a non-2xx provider answer, classified by status. Its detail (what a caller may
 * see) holds at most the body's error message ({@link providerMessageOf}); the body itself, made
 * safe, is kept in `providerBody`. A 401 or 403 refuses Blocks' own key: kind `auth`, with a
 * detail that says only that.
 */
export function errorForStatus(provider: string, status: number, headers: Headers, bodyText: string): ProviderError {
  const message = providerMessageOf(bodyText);
  const said = message === undefined ? '' : `: ${message}`;
  const body = boundedText(bodyText);
  const facts = { provider, providerStatus: status, ...(body === '' ? {} : { providerBody: body }) };
  if (status === 429) {
    // OpenAI also sends the finer-grained retry-after-ms; prefer it when present.
    const ms = headers.get('retry-after-ms');
    const retryAfterMs = ms !== null && /^\d+$/.test(ms.trim()) ? Number(ms) : parseRetryAfter(headers.get('retry-after'));
    return new ProviderError('rate_limited', `${provider} answered ${status}${said}`, { ...facts, retryAfterMs });
  }
  if (status === 408) return new ProviderError('timeout', `${provider} answered ${status}${said}`, facts);
  if (status === 401 || status === 403) {
    // Our key, not the caller's request: the operator's to fix. What the provider said goes to the log and the call record.
    return new ProviderError('auth', `${provider} refused the credentials Blocks sent; the operator has to fix the deployment`, facts);
  }
  // Redirects are never followed (a provider could send the call on to an internal address): the answer is not one.
  if (status >= 300 && status < 400) {
    return new ProviderError('bad_response', `${provider} answered ${status}, a redirect, which is not followed`, facts);
  }
  if (status >= 500) {
    return new ProviderError('server', `${provider} answered ${status}${said}`, {
      ...facts,
      retryAfterMs: parseRetryAfter(headers.get('retry-after')),
    });
  }
  return new ProviderError('client', `${provider} rejected the request (${status})${said}`, facts);
}
