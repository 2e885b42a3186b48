import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { jsonDepthExceeds } from '../../../platform/http/json-limits.ts';
import { egressRefusalOf } from '../../../platform/net/egress.ts';
import { ProviderError, errorForStatus } from './errors.ts';

/**
 * Largest whole (non-streamed) answer read from a provider: far above any completion, far below
 * what would hurt the process. A provider sending more is a 'bad_response', never read to its end.
 */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Of a failing answer only this much is read, for the detail. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** Deepest nesting a provider's JSON may have; completions nest a handful of levels. */
export const MAX_JSON_DEPTH = 64;

/** One POST to a provider, bounded by a timeout, the caller's deadline and the caller's signal. */
export interface ProviderRequest {
  readonly provider: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly deadline?: number;
  /** Connections through this dispatcher (the egress policy's, for URLs a caller set); undici's global one otherwise. */
  readonly dispatcher?: Dispatcher;
}

/**
 * An open exchange with a provider. `close()` aborts the connection if it is still open; call it
 * in a `finally` so an abandoned stream never keeps a socket.
 */
/**
 * The provider's answer as the adapters read it: the parts of a fetch `Response` they use. A
 * whole body is read as text without web streams; a stream gets its web `ReadableStream` on first use.
 */
export interface ProviderResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
}

export interface ProviderExchange {
  readonly response: ProviderResponse;
  /**
   * What a failure while talking to the provider really was: the caller's abort reason, a
   * timeout `ProviderError`, or undefined when neither explains it.
   */
  readonly explain: (error: unknown) => Error | undefined;
  /** Restarts the timeout: a stream that keeps sending stays alive, one that goes quiet times out. */
  readonly touch: () => void;
  /** Stops the timeout while the consumer, not the provider, is the one taking time. */
  readonly pause: () => void;
  readonly close: () => void;
  /** Ends the exchange after its body was read to the end, leaving the connection to keep-alive. */
  readonly release: () => void;
}

/**
 * Sends the request and waits for the response head. Throws `ProviderError` (timeout,
 * unreachable, egress_refused, or the status' kind for a non-2xx answer, whose first 64 KiB are
 * read for the detail; a redirect is not followed but is a bad_response), or the caller's abort reason.
 */
export async function openExchange(request: ProviderRequest): Promise<ProviderExchange> {
  const controller = new AbortController();
  let timedOutAfter: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const budget = (): number =>
    request.deadline === undefined ? request.timeoutMs : Math.min(request.timeoutMs, request.deadline - Date.now());
  const touch = (): void => {
    clearTimeout(timer);
    const ms = budget();
    if (ms <= 0) {
      timedOutAfter = Math.max(0, ms);
      controller.abort();
      return;
    }
    timer = setTimeout(() => {
      timedOutAfter = ms;
      controller.abort();
    }, ms);
  };
  const onCallerAbort = (): void => controller.abort(request.signal?.reason);
  const release = (): void => {
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onCallerAbort);
  };
  const close = (): void => {
    release();
    controller.abort();
  };
  const explain = (error: unknown): Error | undefined => {
    if (error instanceof ProviderError) return error;
    // The reason is whatever the caller aborted with (an Error by convention), handed back unchanged.
    if (request.signal?.aborted) return request.signal.reason as Error;
    if (timedOutAfter !== undefined) {
      return new ProviderError('timeout', `${request.provider} did not answer within ${timedOutAfter} ms`, {
        provider: request.provider,
        cause: error,
      });
    }
    return undefined;
  };

  request.signal?.throwIfAborted();
  request.signal?.addEventListener('abort', onCallerAbort, { once: true });
  touch();
  let answer: UndiciResponse;
  try {
    // undici's request, not fetch: the same keep-alive pool without the web-stream machinery
    // fetch puts around every body, which was a fifth of the proxy's CPU per call. It follows no redirect.
    answer = await undiciRequest(request.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...request.headers },
      body: JSON.stringify(request.body),
      signal: controller.signal,
      ...(request.dispatcher === undefined ? {} : { dispatcher: request.dispatcher }),
    });
  } catch (error) {
    close();
    const explained = explain(error);
    if (explained !== undefined) throw explained;
    const refusal = egressRefusalOf(error);
    if (refusal !== undefined) {
      // The resolved address stays in the cause (logs): a client is not told what internal names resolve to.
      throw new ProviderError(
        'egress_refused',
        `${request.provider} may not be called at ${request.url}: the egress policy forbids its address`,
        {
          provider: request.provider,
          cause: refusal,
        },
      );
    }
    throw new ProviderError('unreachable', `${request.provider} unreachable at ${request.url}: ${describe(error)}`, {
      provider: request.provider,
      cause: error,
    });
  }
  const response = responseOf(answer, request.provider);
  if (!response.ok) {
    let text = '';
    try {
      text = await readUpTo(answer.body, MAX_ERROR_BODY_BYTES);
    } catch (error) {
      close();
      const explained = explain(error);
      // A failing status is already the answer; a body we cannot read only loses the detail.
      if (explained !== undefined) throw explained;
    }
    release();
    throw errorForStatus(request.provider, response.status, response.headers, text);
  }
  return { response, explain, touch, pause: () => clearTimeout(timer), close, release };
}

type UndiciResponse = Awaited<ReturnType<typeof undiciRequest>>;

function responseOf(answer: UndiciResponse, provider: string): ProviderResponse {
  let headers: Headers | undefined;
  let body: ReadableStream<Uint8Array> | undefined;
  return {
    ok: answer.statusCode >= 200 && answer.statusCode < 300,
    status: answer.statusCode,
    get headers() {
      if (headers === undefined) {
        headers = new Headers();
        for (const [name, value] of Object.entries(answer.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
        }
      }
      return headers;
    },
    get body() {
      return (body ??= Readable.toWeb(answer.body) as ReadableStream<Uint8Array>);
    },
    text: () => readAtMost(answer.body, MAX_BODY_BYTES, provider),
  };
}

/** The whole body as text, or a 'bad_response' as soon as it passes `maxBytes` (the rest is never read). */
async function readAtMost(body: UndiciResponse['body'], maxBytes: number, provider: string): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > maxBytes) {
      body.destroy();
      throw new ProviderError('bad_response', `${provider} sent an answer larger than ${maxBytes} bytes`, { provider });
    }
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The first `maxBytes` of a body (for an error's detail); the connection is dropped if there is more. */
async function readUpTo(body: UndiciResponse['body'], maxBytes: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    parts.push(part);
    size += part.length;
    if (size >= maxBytes) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8').slice(0, maxBytes);
}

/**
 * Reads a whole JSON body. Throws `ProviderError` 'bad_response' when the body is not JSON, is
 * cut off, passes {@link MAX_BODY_BYTES} or nests deeper than {@link MAX_JSON_DEPTH}; 'timeout'
 * when it does not arrive in time.
 */
export async function readJsonBody(exchange: ProviderExchange, provider: string): Promise<unknown> {
  let text: string;
  try {
    text = await exchange.response.text();
  } catch (error) {
    exchange.close();
    throw badBodyOr(exchange, provider, error);
  }
  exchange.release();
  // JSON.parse copes with any depth, but what walks the result afterwards (serialising it) recurses.
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
    throw new ProviderError('bad_response', `${provider} sent JSON nested deeper than ${MAX_JSON_DEPTH} levels`, { provider });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // What the provider sent stays in the cause (logs): it is not passed on to the client.
    throw new ProviderError('bad_response', `${provider} sent a body that is not JSON`, { provider, cause: excerpted(text, error) });
  }
}

/** The error for a failed read of a response body: the caller's abort, a timeout, or a body cut off. */
export function badBodyOr(exchange: ProviderExchange, provider: string, error: unknown): Error {
  return (
    exchange.explain(error) ??
    new ProviderError('bad_response', `${provider} cut its response off: ${describe(error)}`, { provider, cause: error })
  );
}

/** An error for the logs holding the start of what a provider sent. */
export const excerpted = (text: string, cause: unknown): Error => new Error(`provider sent: ${text.slice(0, 200)}`, { cause });

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}
