import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What a fake provider does with the next request. `answer` and `tool_call` stream when the
 * request asks for it (`stream: true`), non-streaming otherwise.
 */
export type FakeBehaviour =
  | { readonly kind: 'answer' }
  | { readonly kind: 'tool_call'; readonly name?: string; readonly arguments?: Readonly<Record<string, unknown>> }
  /** 429 with this Retry-After header value (seconds or an HTTP date); none when absent. */
  | { readonly kind: 'rate_limited'; readonly retryAfter?: string }
  /** This status with the provider's error body. */
  | { readonly kind: 'error'; readonly status: number; readonly message?: string }
  /** Sends nothing for `delayMs`, then answers. */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** 200 with a body that is not JSON (a stream: an event whose data is not JSON). */
  | { readonly kind: 'malformed' }
  /** 200 with JSON that lacks the provider's required fields (choices / content). */
  | { readonly kind: 'missing_fields' }
  /** Streams a few chunks, then half an event, then ends the response without the stream's end marker. */
  | { readonly kind: 'truncated_stream' }
  /** Streams content chunks until the client goes away. */
  | { readonly kind: 'endless_stream' }
  /** Streams the whole answer (usage included when asked), pausing `delayMs` after each event: a long answer a client can leave mid-way. */
  | { readonly kind: 'slow_stream'; readonly delayMs: number };

/** A request the fake received, as it came over the wire. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

export interface FakeProviderOptions {
  /** Pause between two writes of a stream; 0 writes each event whole, at once (for benchmarks). Default 2. */
  readonly chunkDelayMs?: number;
  /** Keep every request in `requests` (default); a benchmark turns it off so memory stays flat. */
  readonly recordRequests?: boolean;
  /** Listen on this port (0 or absent: a free one). */
  readonly port?: number;
}

/** A running fake provider. */
export interface FakeProvider {
  /** `http://127.0.0.1:<port>`; the OpenAI fake serves under `/v1`. */
  readonly origin: string;
  /** What the adapter under test should use as its base URL. */
  readonly baseUrl: string;
  readonly requests: readonly RecordedRequest[];
  /** Changes what the next requests get (e.g. a provider going down mid-run). */
  setBehaviour(behaviour: FakeBehaviour | ((request: RecordedRequest) => FakeBehaviour)): void;
  /** How many TCP connections clients opened to the fake (keep-alive reuse keeps this low). */
  readonly connections: number;
  /** How many responses the client abandoned before the fake finished them. */
  readonly abandoned: number;
  /** Resolves at the next response the client abandons. */
  nextAbandoned(): Promise<void>;
  /** Stops listening and drops every connection, as a provider that went down: calls are refused. */
  down(): Promise<void>;
  /** Listens again on the same port after `down()`. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** The provider-specific half: what to send for each behaviour. */
export interface WireFormat {
  readonly path: string;
  readonly baseSuffix: string;
  /** The JSON answer, or (for a tool call) the tool call answer. */
  answer(body: Record<string, unknown>, behaviour: FakeBehaviour): unknown;
  /** The whole SSE events of a streamed answer, each with its terminating blank line. */
  streamEvents(body: Record<string, unknown>, behaviour: FakeBehaviour): string[];
  /** One content event of an endless stream. */
  contentEvent(piece: string): string;
  errorBody(status: number, message: string): unknown;
  missingFields(): unknown;
}

/** Starts a fake provider on 127.0.0.1 on a free port. */
export async function startFakeProvider(
  wire: WireFormat,
  initial: FakeBehaviour | ((request: RecordedRequest) => FakeBehaviour),
  options: FakeProviderOptions = {},
): Promise<FakeProvider> {
  const chunkDelayMs = options.chunkDelayMs ?? 2;
  let behaviourOf = typeof initial === 'function' ? initial : () => initial;
  const requests: RecordedRequest[] = [];
  let abandoned = 0;
  let waiters: (() => void)[] = [];
  // Pauses end early at close(), so a slow or endless answer leaves no timer behind.
  const pauses = new Map<NodeJS.Timeout, () => void>();
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        pauses.delete(timer);
        resolve();
      }, ms);
      pauses.set(timer, resolve);
    });

  const writeEvents = async (res: ServerResponse, events: readonly string[], gone: () => boolean): Promise<void> => {
    for (const event of events) {
      if (gone()) return;
      const bytes = Buffer.from(event);
      if (chunkDelayMs === 0) {
        res.write(bytes);
        continue;
      }
      // Split each event mid-line (and possibly mid-character) so clients must reassemble reads.
      const cut = Math.max(1, Math.floor(bytes.length / 2));
      res.write(bytes.subarray(0, cut));
      await sleep(chunkDelayMs);
      if (gone()) return;
      res.write(bytes.subarray(cut));
      await sleep(chunkDelayMs);
    }
  };

  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      void (async () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(wire.errorBody(400, 'body is not JSON')));
          return;
        }
        const recorded: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
        if (options.recordRequests !== false) requests.push(recorded);
        let closed = false;
        res.on('close', () => {
          closed = true;
          if (!res.writableFinished) {
            abandoned += 1;
            const ready = waiters;
            waiters = [];
            for (const wake of ready) wake();
          }
        });
        const gone = (): boolean => closed;
        if (req.url !== wire.path) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify(wire.errorBody(404, `no route ${req.url}`)));
          return;
        }
        let behaviour = behaviourOf(recorded);
        if (behaviour.kind === 'slow') {
          await sleep(behaviour.delayMs);
          if (gone()) return;
          behaviour = { kind: 'answer' };
        }
        const json = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
        };
        const sse = (): void => {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        };
        switch (behaviour.kind) {
          case 'rate_limited':
            json(
              429,
              wire.errorBody(429, 'rate limited'),
              behaviour.retryAfter === undefined ? {} : { 'retry-after': behaviour.retryAfter },
            );
            return;
          case 'error':
            json(behaviour.status, wire.errorBody(behaviour.status, behaviour.message ?? `failed with ${behaviour.status}`));
            return;
          case 'missing_fields':
            json(200, wire.missingFields());
            return;
          case 'malformed':
            if (body['stream'] === true) {
              sse();
              await writeEvents(res, ['data: {"choices": [{"delta": \n\n'], gone);
              res.end();
            } else {
              res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": "x", "choices": [');
            }
            return;
          case 'truncated_stream': {
            sse();
            const events = wire.streamEvents(body, { kind: 'answer' });
            await writeEvents(res, events.slice(0, 2), gone);
            const half = events[2] ?? 'data: {"half';
            if (!gone()) res.end(half.slice(0, Math.floor(half.length / 2)));
            return;
          }
          case 'endless_stream': {
            sse();
            await writeEvents(res, wire.streamEvents(body, { kind: 'answer' }).slice(0, 1), gone);
            for (let i = 0; !gone(); i += 1) {
              await writeEvents(res, [wire.contentEvent(` ${i}`)], gone);
              await sleep(Math.max(chunkDelayMs, 1));
            }
            return;
          }
          case 'slow_stream': {
            sse();
            for (const event of wire.streamEvents(body, { kind: 'answer' })) {
              await writeEvents(res, [event], gone);
              if (gone()) return;
              await sleep(behaviour.delayMs);
            }
            if (!gone()) res.end();
            return;
          }
          case 'answer':
          case 'tool_call':
            if (body['stream'] === true) {
              sse();
              await writeEvents(res, wire.streamEvents(body, behaviour), gone);
              if (!gone()) res.end();
            } else {
              json(200, wire.answer(body, behaviour));
            }
            return;
        }
      })();
    });
  });

  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;
  const stop = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
      for (const [timer, wake] of pauses) {
        clearTimeout(timer);
        wake();
      }
      pauses.clear();
    });
  return {
    origin,
    baseUrl: `${origin}${wire.baseSuffix}`,
    requests,
    setBehaviour(behaviour) {
      behaviourOf = typeof behaviour === 'function' ? behaviour : () => behaviour;
    },
    get connections() {
      return connections;
    },
    get abandoned() {
      return abandoned;
    },
    nextAbandoned: () => new Promise<void>((resolve) => waiters.push(resolve)),
    down: stop,
    up: () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      }),
    close: stop,
  };
}

/** The text of the last user turn, whichever wire format carried it. */
export function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  for (const message of [...messages].reverse()) {
    if (typeof message !== 'object' || message === null || (message as { role?: unknown }).role !== 'user') continue;
    const content = (message as { content?: unknown }).content;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      const texts = content.filter(
        (part): part is { type: 'text'; text: string } => part?.type === 'text' && typeof part.text === 'string',
      );
      if (texts.length > 0) return texts.map((part) => part.text).join('');
    }
  }
  return '';
}

/**
 * The deterministic answer both fakes give: `echo: <last user text>`, in word-sized pieces for
 * streams, and usage that depends only on that text, so both providers report the same numbers.
 */
export function echoOf(body: Record<string, unknown>): { pieces: string[]; promptTokens: number; completionTokens: number } {
  const text = lastUserText(body['messages']);
  const pieces = `echo: ${text}`.split(/(?= )/);
  return { pieces, promptTokens: 10 + text.split(/\s+/).filter(Boolean).length, completionTokens: pieces.length };
}

/** The tool call both fakes make: the request's first tool (or `lookup`), with `{ query: <last user text> }`. */
export function toolCallOf(body: Record<string, unknown>, behaviour: FakeBehaviour): { name: string; argumentsJson: string } {
  const requested = behaviour.kind === 'tool_call' ? behaviour : undefined;
  const tools = Array.isArray(body['tools']) ? (body['tools'] as { name?: unknown; function?: { name?: unknown } }[]) : [];
  const first = tools[0];
  const declared =
    typeof first?.name === 'string' ? first.name : typeof first?.function?.name === 'string' ? first.function.name : undefined;
  const name = requested?.name ?? declared ?? 'lookup';
  return { name, argumentsJson: JSON.stringify(requested?.arguments ?? { query: lastUserText(body['messages']) }) };
}
