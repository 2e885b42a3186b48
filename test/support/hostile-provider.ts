import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the hostile server does with a request (its body already read). */
export type HostileAnswer = (request: IncomingMessage, response: ServerResponse, body: string) => void;

/** A real HTTP server that answers whatever a test tells it to: a provider gone bad (OWASP API10). */
export interface HostileProvider {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Requests received so far. */
  readonly hits: number;
  answer(next: HostileAnswer): void;
  close(): Promise<void>;
}

/** JSON with this status; `text` is sent as it is (it need not be JSON). */
export const sendText =
  (text: string, status = 200, contentType = 'application/json'): HostileAnswer =>
  (_request, response) => {
    response.writeHead(status, { 'content-type': contentType }).end(text);
  };

export async function startHostileProvider(initial: HostileAnswer = sendText('{}')): Promise<HostileProvider> {
  let answer = initial;
  let hits = 0;
  const server = createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on('data', (part: Buffer) => parts.push(part));
    request.on('end', () => {
      hits += 1;
      answer(request, response, Buffer.concat(parts).toString('utf8'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    get hits() {
      return hits;
    },
    answer(next) {
      answer = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
