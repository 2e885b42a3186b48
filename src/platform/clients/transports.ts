import { Readable } from 'node:stream';
import type { ServiceTransport } from './autonomous-client.ts';

/** The minimal app interface the in-process transport needs (fastify's `inject`). */
export interface InjectableApp {
  inject(request: {
    method: string;
    url: string;
    headers: Record<string, string>;
    payload?: string;
    payloadAsStream: true;
  }): Promise<{ statusCode: number; headers: Record<string, string | string[] | number | undefined>; stream(): Readable }>;
}

/**
 * Into an app of this process, through its whole request path (validation, the access decision,
 * rate limits): the same service as over the network, without the socket. `app` is asked at each
 * call, since apps are built after the modules that hold the client.
 */
export function inProcessTransport(app: () => InjectableApp): ServiceTransport {
  return {
    async send(request) {
      const answer = await app().inject({
        method: request.method,
        url: request.path,
        headers: request.headers,
        ...(request.body === undefined ? {} : { payload: request.body }),
        payloadAsStream: true,
      });
      const headers = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : String(value));
      }
      return { status: answer.statusCode, headers, body: Readable.toWeb(answer.stream()) as ReadableStream<Uint8Array> };
    },
  };
}

/**
 * Over HTTP to a service's members (`services.<name>.url(s)`), trying the next member when one
 * refuses the connection (nothing was sent, so nothing can happen twice).
 */
export function httpTransport(urls: readonly string[]): ServiceTransport {
  if (urls.length === 0) throw new Error('an HTTP transport needs at least one URL');
  let next = 0;
  return {
    async send(request) {
      let lastError: unknown;
      for (let tried = 0; tried < urls.length; tried += 1) {
        const base = urls[(next = (next + 1) % urls.length)] as string;
        try {
          const answer = await fetch(new URL(request.path, base), {
            method: request.method,
            headers: request.headers,
            ...(request.body === undefined ? {} : { body: request.body }),
          });
          return { status: answer.status, headers: answer.headers, body: answer.body ?? '' };
        } catch (error) {
          lastError = error;
          if (!refused(error)) throw error;
        }
      }
      throw lastError;
    },
  };
}

const refused = (error: unknown): boolean => {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if ((cause as NodeJS.ErrnoException).code === 'ECONNREFUSED') return true;
  }
  return false;
};
