import { ProviderError } from './errors.ts';
import { badBodyOr, type ProviderExchange } from './http.ts';

/** One server-sent event: its `event:` name (if any) and its joined `data:` lines. */
export interface SseEvent {
  readonly event: string | undefined;
  readonly data: string;
}

/** How long to wait, after a stream's last event, for the body's end so the socket stays reusable. */
const TAIL_WAIT_MS = 100;
/**
 * Longest event (its unfinished line and data lines together), in characters. Events are a few
 * hundred bytes; a provider streaming one endless line must not grow memory until the timeout.
 */
export const MAX_EVENT_CHARS = 1024 * 1024;

/**
 * The server-sent events of a response body, per the WHATWG event-stream rules: lines may
 * arrive split across reads and end in LF, CRLF or CR; an event ends at a blank line. Each read
 * waits at most the exchange's timeout. A body cut off mid-read is a 'bad_response'; an event
 * left unterminated at the end is dropped, as the format says.
 *
 * Leaving the loop early closes the connection, except after the event `isLast` names (OpenAI's
 * `[DONE]`, Anthropic's `message_stop`): then the rest of the body is read for a moment, so a
 * provider that ends its response promptly keeps its connection alive for the next call.
 */
export async function* readSse(
  exchange: ProviderExchange,
  provider: string,
  isLast?: (event: SseEvent) => boolean,
): AsyncGenerator<SseEvent> {
  const body = exchange.response.body;
  if (body === null) {
    exchange.close();
    throw new ProviderError('bad_response', `${provider} sent a stream with no body`, { provider });
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event: string | undefined;
  let data: string[] = [];
  let dataChars = 0;
  let sawLast = false;
  let readToEnd = false;

  // Yields the events completed by the whole lines in `buffer`. Until the body ends, a lone CR at
  // the end of the buffer may be the first half of a CRLF, so it waits for the next read.
  function* drain(final: boolean): Generator<SseEvent> {
    const lineEnd = final ? /\r\n|\n|\r/ : /\r\n|\n|\r(?!$)/;
    let newline: RegExpExecArray | null;
    while ((newline = lineEnd.exec(buffer)) !== null) {
      const line = buffer.slice(0, newline.index);
      buffer = buffer.slice(newline.index + newline[0].length);
      if (line === '') {
        if (data.length > 0) {
          const complete = { event, data: data.join('\n') };
          if (isLast?.(complete)) sawLast = true;
          yield complete;
        }
        event = undefined;
        data = [];
        dataChars = 0;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') {
        data.push(value);
        dataChars += value.length;
      } else if (field === 'event') event = value;
    }
  }

  try {
    for (;;) {
      exchange.touch();
      const chunk = await reader.read().catch((error: unknown) => {
        throw badBodyOr(exchange, provider, error);
      });
      exchange.pause();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      yield* drain(false);
      if (buffer.length + dataChars > MAX_EVENT_CHARS) {
        throw new ProviderError('bad_response', `${provider} sent a stream event longer than ${MAX_EVENT_CHARS} characters`, { provider });
      }
    }
    readToEnd = true;
    buffer += decoder.decode();
    yield* drain(true);
  } finally {
    if (!readToEnd && sawLast) readToEnd = await readTail(reader);
    // Aborting a body that was read to its end would still cost the socket its keep-alive.
    if (readToEnd) exchange.release();
    else {
      exchange.close();
      await reader.cancel().catch(() => undefined);
    }
  }
}

/** Reads what follows the last event for up to TAIL_WAIT_MS; true when the body ended. */
async function readTail(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'gave-up'>((resolve) => {
    timer = setTimeout(() => resolve('gave-up'), TAIL_WAIT_MS);
  });
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), gaveUp]);
      if (next === 'gave-up') return false;
      if (next.done) return true;
    }
  } catch {
    // The answer is already complete; a failure after its last event only costs the connection.
    return false;
  } finally {
    clearTimeout(timer);
  }
}
