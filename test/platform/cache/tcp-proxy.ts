import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real service, so a test can make that service stop answering or go
 * away without touching the shared instance: `hold()` keeps replies back (the connection looks
 * alive), `release()` lets them through, `kill()` drops every connection and stops listening,
 * `restore()` listens again on the same port.
 */
export interface TcpProxy {
  readonly url: string;
  hold(): void;
  /** Replies held back so far, as text (to wait until the service has answered). */
  heldText(): string;
  release(): void;
  kill(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const { hostname, port: targetPort, protocol } = new URL(target);
  const sockets = new Set<Socket>();
  const held: Array<{ chunk: Buffer; flush: () => void }> = [];
  let holding = false;

  const onConnection = (client: Socket): void => {
    const upstream = connect({ host: hostname, port: Number(targetPort) });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (holding) held.push({ chunk, flush: () => client.write(chunk) });
      else client.write(chunk);
    });
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', teardown);
    upstream.on('close', teardown);
    client.on('error', teardown);
    upstream.on('error', teardown);
  };

  let server: Server | undefined;
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        resolve((s.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);

  const kill = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    held.length = 0;
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  return {
    url: `${protocol}//127.0.0.1:${port}`,
    hold: () => {
      holding = true;
    },
    heldText: () => Buffer.concat(held.map((h) => h.chunk)).toString('utf8'),
    release: () => {
      holding = false;
      for (const { flush } of held.splice(0)) flush();
    },
    kill,
    restore: async () => {
      holding = false;
      await listen(port);
    },
    close: kill,
  };
}
