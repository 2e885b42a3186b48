import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import { CLOSE_CODES } from '../../src/platform/http/websocket.ts';
import { startBlocks, type RunningBlocks } from '../../src/start.ts';
import { CONFIG_DIR, eventually, tempDir } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { probeService } from '../support/services.ts';
import { echoRegistry } from './fixtures/echo-module.ts';
import { ECHO_SCOPE, type EchoHello } from './fixtures/echo-routes.ts';
import { open, refused, type OpenClient } from './fixtures/ws-client.ts';

// WebSocket conformance through the gateway: a real ws client, a gateway in this process, and the
// autonomous service (with a WebSocket echo module) in a child process, sharing one PostgreSQL.
// The gateway picks a member from its pool, one of which refuses every connection.

const postgres = await probeService('postgres');
const SERVICE = fileURLToPath(new URL('./fixtures/ws-service.ts', import.meta.url));
const ECHO = '/api/v1/autonomous/ws-echo/echo';
const TICKETS = '/api/v1/autonomous/ws-echo/ws-tickets';

interface ServiceProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly logs: Array<Record<string, unknown>>;
}

async function spawnService(databaseUrl: string): Promise<ServiceProcess> {
  const dataDir = tempDir('blocks-ws-service');
  const child = spawn(process.execPath, [SERVICE], {
    env: { PATH: process.env.PATH, BLOCKS_ENV: 'test', LOG_LEVEL: 'info', DATABASE_URL: databaseUrl, BLOCKS_DATA_DIR: dataDir.path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.once('exit', () => dataDir.remove());
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => stderr.push(line));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        logs.push(parsed);
        if (typeof parsed['listening'] === 'string') resolve(parsed['listening']);
      } catch {
        stderr.push(`stdout: ${line}`);
      }
    });
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}:\n${stderr.join('\n')}`)));
  });
  return { child, url, logs };
}

/** A URL nothing listens on: a member whose every connection is refused. */
async function deadMember(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

async function startGateway(databaseUrl: string, members: readonly string[]): Promise<RunningBlocks> {
  const dataDir = tempDir('blocks-ws-gateway');
  const config = loadConfig({
    configDir: CONFIG_DIR,
    env: { BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: dataDir.path, DATABASE_URL: databaseUrl },
    sections: echoRegistry.configSections,
    overrides: {
      services: { autonomous: { urls: [...members] }, collaborative: { url: 'http://127.0.0.1:9' } },
      // No health checks: only connection attempts move members, so the dead one stays in the pool.
      gateway: { upstreams: { health_check: { interval: 0 }, max_attempts: 2, passive: { failures: 1000 } } },
    },
  });
  const blocks = await startBlocks({ config, roles: ['gateway'], version: 'test', ephemeralPorts: true, registry: echoRegistry });
  return { ...blocks, close: () => blocks.close().finally(() => dataDir.remove()) };
}

const helloOf = async (client: OpenClient): Promise<EchoHello['hello']> =>
  (JSON.parse(String((await client.next()).data)) as EchoHello).hello;

describe.skipIf(!postgres.ok)('WebSocket through the gateway to a service in another process', () => {
  let db: TestDatabase;
  let service: ServiceProcess;
  let gateway: RunningBlocks;
  let creds: TestCredentials;
  let ws: string;

  beforeAll(async () => {
    db = await createTestDatabase('blocks_ws');
    service = await spawnService(db.url);
    gateway = await startGateway(db.url, [await deadMember(), service.url]);
    creds = testCredentials(gateway);
    ws = `${(gateway.urls.gateway as string).replace('http', 'ws')}${ECHO}`;
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    if (service && service.child.exitCode === null && service.child.signalCode === null) {
      const exited = new Promise((resolve) => service.child.once('exit', resolve));
      service.child.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
  });

  it('forwards an upgrade authenticated by header and relays text as text and binary as binary, both ways', async () => {
    const client = await open(ws, { headers: await creds.headers('acme', [ECHO_SCOPE]) });
    // The service decided access again, for the caller, and saw the client's address from the gateway.
    expect(await helloOf(client)).toMatchObject({ tenant: 'acme', scopes: [ECHO_SCOPE], forwarded_for: '127.0.0.1' });
    client.socket.send('over the gateway');
    const text = await client.next();
    expect([String(text.data), text.binary]).toEqual(['over the gateway', false]);
    client.socket.send(Buffer.from([9, 8, 7]));
    const binary = await client.next();
    expect([[...binary.data], binary.binary]).toEqual([[9, 8, 7], true]);
    client.socket.close();
    await client.closed;
  });

  it('opens every connection although one member of the pool refuses them all', async () => {
    const headers = await creds.headers('acme', [ECHO_SCOPE]);
    const clients = await Promise.all(Array.from({ length: 4 }, () => open(ws, { headers })));
    for (const client of clients) expect((await helloOf(client)).tenant).toBe('acme');
    for (const client of clients) client.socket.close();
  });

  it('passes a bearer subprotocol on; client and service agree on the protocol the service chose, never the credential', async () => {
    const key = await creds.key('acme', [ECHO_SCOPE]);
    const client = await open(ws, { protocols: [`blocks.bearer.${key}`, 'blocks.v1'] });
    expect(client.protocol).toBe('blocks.v1');
    expect(await helloOf(client)).toMatchObject({ tenant: 'acme', protocol: 'blocks.v1' });
    client.socket.close();
  });

  it('takes a ticket issued by the service once: the gateway only looks, the service consumes it', async () => {
    const response = await fetch(`${gateway.urls.gateway as string}${TICKETS}`, {
      method: 'POST',
      headers: { ...(await creds.headers('acme', [ECHO_SCOPE])), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(201);
    const { ticket } = (await response.json()) as { ticket: string };
    const client = await open(`${ws}?ticket=${ticket}`);
    expect((await helloOf(client)).tenant).toBe('acme');
    client.socket.close();
    const again = await refused(`${ws}?ticket=${ticket}`);
    expect(again.status).toBe(401);
    expect(again.body['code']).toBe('INVALID_CREDENTIALS');
  });

  it("answers the service's 403 problem before any upgrade when the caller lacks the route's scope", async () => {
    // The gateway's pass-through takes any authenticated caller; the service refuses this one.
    const answer = await refused(ws, { headers: await creds.headers('acme', []) });
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: ECHO_SCOPE });
  });

  it('refuses an upgrade without a credential at the gateway with a 401 problem', async () => {
    const answer = await refused(ws);
    expect(answer.status).toBe(401);
    expect(answer.body['code']).toBe('AUTHENTICATION_REQUIRED');
  });

  it("passes the service's close code and reason to the client, and the client's to the service", async () => {
    const headers = await creds.headers('acme', [ECHO_SCOPE]);
    const first = await open(ws, { headers });
    await first.next();
    first.socket.send('close:4001:bye from the service');
    expect(await first.closed).toEqual({ code: 4001, reason: 'bye from the service' });

    const second = await open(ws, { headers });
    await second.next();
    second.socket.close(4002, 'bye from the client');
    await second.closed;
    const seen = await eventually(
      async () =>
        service.logs.filter((line) => JSON.stringify(line['websocket_closed']) === '{"code":4002,"reason":"bye from the client"}'),
      (lines) => lines.length > 0,
    );
    expect(seen).toHaveLength(1);
  });

  it('closes forwarded connections with 1001 on both sides when the gateway shuts down', async () => {
    const other = await startGateway(db.url, [service.url]);
    const client = await open(`${(other.urls.gateway as string).replace('http', 'ws')}${ECHO}`, {
      headers: await testCredentials(other).headers('acme', [ECHO_SCOPE]),
    });
    await client.next();
    await other.close();
    expect(await client.closed).toEqual({ code: CLOSE_CODES.GOING_AWAY, reason: 'server shutting down' });
    const seen = await eventually(
      async () =>
        service.logs.filter((line) => JSON.stringify(line['websocket_closed']) === '{"code":1001,"reason":"server shutting down"}'),
      (lines) => lines.length > 0,
    );
    expect(seen.length).toBeGreaterThan(0);
  });

  // Last: it kills the service.
  it('closes the client with 1014 when the service process dies', async () => {
    const client = await open(ws, { headers: await creds.headers('acme', [ECHO_SCOPE]) });
    await client.next();
    service.child.kill('SIGKILL');
    expect(await client.closed).toEqual({ code: CLOSE_CODES.BAD_GATEWAY, reason: 'the service connection was lost' });
  });
});
