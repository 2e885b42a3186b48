import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A plain HTTP server standing in for one process of a service behind the gateway. */
export interface Member {
  readonly name: string;
  readonly url: string;
  /** Requests answered, by `METHOD path` (health checks included), since the last reset. */
  readonly hits: Map<string, number>;
  /** Requests other than health checks this member received. */
  served(): number;
  /** Headers of the last request other than a health check. */
  lastHeaders: IncomingMessage['headers'];
  /** Whether /health/ready answers 200 (true) or 503. */
  ready: boolean;
  /** Requests to `/api/v1/autonomous/slow` wait until this resolves; requests to a path ending `/reset` have their connection cut after the body was read. */
  hold: Promise<void>;
  /** Stops listening and cuts every open connection, as a killed process would. */
  kill(): Promise<void>;
  /** Listens again on the same port. */
  revive(): Promise<void>;
}

const body = async (request: IncomingMessage): Promise<string> => {
  let text = '';
  for await (const chunk of request) text += String(chunk);
  return text;
};

export async function startMember(name: string): Promise<Member> {
  let port = 0;
  let server: Server;
  const member: Member = {
    name,
    url: '',
    hits: new Map(),
    served: () => [...member.hits].filter(([key]) => !key.endsWith('/health/ready')).reduce((sum, [, n]) => sum + n, 0),
    lastHeaders: {},
    ready: true,
    hold: Promise.resolve(),
    kill: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
    revive: () => listen(),
  };
  const listen = async (): Promise<void> => {
    server = createServer((request, response) => {
      void (async () => {
        const path = (request.url ?? '/').split('?')[0] as string;
        const key = `${request.method} ${path}`;
        member.hits.set(key, (member.hits.get(key) ?? 0) + 1);
        const text = await body(request);
        if (path !== '/health/ready') member.lastHeaders = request.headers;
        if (path === '/health/ready') {
          response.writeHead(member.ready ? 200 : 503, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ ready: member.ready }));
          return;
        }
        if (path.endsWith('/slow')) await member.hold;
        // The request arrived whole, then the connection dies without an answer: the member may have acted on it.
        if (path.endsWith('/reset')) {
          request.socket.destroy();
          return;
        }
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ member: name, method: request.method, body: text }));
      })();
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    (member as { url: string }).url = `http://127.0.0.1:${port}`;
  };
  await listen();
  return member;
}
