import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Database } from '../../../src/platform/db/port.ts';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { CLOSE_CODES, DEFAULT_WEBSOCKET_LIMITS, type WebSocketLimits } from '../../../src/platform/http/websocket.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import { createWebSocketTickets, webSocketTicketRoutes, type WebSocketTickets } from '../../../src/platform/websocket/index.ts';
import { testAccess, testHttpServer, type TestAccess } from '../../support/http-access.ts';
import { createTestPglite } from '../../support/databases.ts';
import { createManualClock, type ManualClock } from '../events/manual-clock.ts';
import { ECHO_SCOPE, echoRoutes, type EchoHello } from '../../gateway/fixtures/echo-routes.ts';
import { connect, open, refused, type OpenClient } from '../../gateway/fixtures/ws-client.ts';

export const WS_TICKETS_MIGRATION = new URL('../../../src/platform/migrations/0014_ws_tickets.sql', import.meta.url);

const PREFIX = '/api/v1/test';
const TICKET_TTL_MS = 30_000;
const LIMITS: WebSocketLimits = {
  ...DEFAULT_WEBSOCKET_LIMITS,
  maxPayloadBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
  // Not the default (1013): the configured code is the one sent.
  bufferExceededCode: CLOSE_CODES.POLICY_VIOLATION,
  pingIntervalMs: 250,
  closeTimeoutMs: 2_000,
};

let auth: TestAccess;
let db: Database;
let clock: ManualClock;
let tickets: WebSocketTickets;
const logLines: string[] = [];

/** An app as createHttpServer builds it for a process, with the echo route and its ticket route, listening. */
async function startApp(): Promise<{ app: HttpServer; base: string; ws: string }> {
  const app = await testHttpServer(auth.access, {
    logRequests: true,
    logger: createLogger({
      level: 'info',
      service: 'test',
      version: 'test',
      destination: { write: (line: string) => void logLines.push(line) },
    }),
    webSocket: { ...LIMITS, tickets },
  });
  await app.register(echoRoutes, { prefix: PREFIX });
  await app.register(webSocketTicketRoutes, { prefix: PREFIX, tickets, scope: ECHO_SCOPE });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, base, ws: `${base.replace('http', 'ws')}${PREFIX}/echo` };
}

let served: { app: HttpServer; base: string; ws: string };

beforeAll(async () => {
  auth = await testAccess();
  db = await createTestPglite('blank');
  await db.exec(readFileSync(WS_TICKETS_MIGRATION, 'utf8'));
  clock = createManualClock(Date.now());
  tickets = createWebSocketTickets({ db, clock, ttlMs: TICKET_TTL_MS });
  served = await startApp();
});

afterAll(async () => {
  await served?.app.close();
  await db?.close();
});

const helloOf = async (client: OpenClient): Promise<EchoHello['hello']> =>
  (JSON.parse(String((await client.next()).data)) as EchoHello).hello;

async function ticketFor(
  headers: Record<string, string>,
  scopes?: readonly string[],
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${served.base}${PREFIX}/ws-tickets`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify(scopes === undefined ? {} : { scopes }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function ticket(headers: Record<string, string>, scopes?: readonly string[]): Promise<string> {
  const answer = await ticketFor(headers, scopes);
  expect(answer.status).toBe(201);
  return answer.body['ticket'] as string;
}

describe('WebSocket upgrades are decided by the access hook', () => {
  it('opens with an Authorization header and echoes text as text and binary as binary', async () => {
    const client = await open(served.ws, { headers: await auth.bearer('acme', [ECHO_SCOPE]) });
    expect(await helloOf(client)).toMatchObject({ tenant: 'acme', scopes: [ECHO_SCOPE] });
    client.socket.send('hello');
    const text = await client.next();
    expect([String(text.data), text.binary]).toEqual(['hello', false]);
    client.socket.send(Buffer.from([0, 1, 2, 255]));
    const binary = await client.next();
    expect([[...binary.data], binary.binary]).toEqual([[0, 1, 2, 255], true]);
    client.socket.close(CLOSE_CODES.NORMAL);
    expect((await client.closed).code).toBe(CLOSE_CODES.NORMAL);
  });

  it('opens with a bearer subprotocol and answers with the other protocol offered, never the token', async () => {
    const token = (await auth.bearer('acme', [ECHO_SCOPE])).authorization?.replace('Bearer ', '') as string;
    const client = await open(served.ws, { protocols: [`blocks.bearer.${token}`, 'blocks.v1'] });
    expect(client.protocol).toBe('blocks.v1');
    expect(client.headers['sec-websocket-protocol']).toBe('blocks.v1');
    expect(await helloOf(client)).toMatchObject({ tenant: 'acme', protocol: 'blocks.v1' });
    client.socket.close();
    await client.closed;
  });

  it('refuses an invalid bearer subprotocol with a 401 problem, before any upgrade', async () => {
    const answer = await refused(served.ws, { protocols: ['blocks.bearer.not-a-key', 'blocks.v1'] });
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.body['code']).toBe('INVALID_CREDENTIALS');
    expect(answer.headers['sec-websocket-protocol']).toBeUndefined();
  });

  it('refuses an upgrade without a credential with a 401 problem, before any upgrade', async () => {
    const answer = await refused(served.ws);
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="blocks"');
    expect(answer.body['code']).toBe('AUTHENTICATION_REQUIRED');
  });

  it("refuses a caller without the route's scope with a 403 problem, before any upgrade", async () => {
    const answer = await refused(served.ws, { headers: await auth.bearer('acme', ['other:scope']) });
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: ECHO_SCOPE });
  });

  it('refuses two credentials at once (a header and a bearer subprotocol) as ambiguous', async () => {
    const headers = await auth.bearer('acme', [ECHO_SCOPE]);
    const token = headers.authorization?.replace('Bearer ', '') as string;
    const answer = await refused(served.ws, { headers, protocols: [`blocks.bearer.${token}`, 'blocks.v1'] });
    expect(answer.status).toBe(401);
    expect(answer.body['code']).toBe('INVALID_CREDENTIALS');
  });
});

describe('WebSocket routes in the route inventory', () => {
  it('lists a WebSocket route with its scope, hidden from the OpenAPI document like the checks that walk documented routes expect', async () => {
    const echo = served.app.routeInventory().find((route) => route.url === `${PREFIX}/echo` && route.method === 'GET');
    expect(echo).toMatchObject({ scope: ECHO_SCOPE, hidden: true });
    const doc = (await (await fetch(`${served.base}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(doc.paths[`${PREFIX}/echo`]).toBeUndefined();
  });
});

describe('WebSocket tickets', () => {
  it("opens once with the caller's tenant and scopes; a second use is refused", async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE, 'other:scope']));
    expect(value).toMatch(/^wst_/);
    const client = await open(`${served.ws}?ticket=${value}`);
    expect(await helloOf(client)).toMatchObject({ tenant: 'acme', scopes: [ECHO_SCOPE, 'other:scope'] });
    client.socket.close();
    const again = await refused(`${served.ws}?ticket=${value}`);
    expect(again.status).toBe(401);
    expect(again.body['code']).toBe('INVALID_CREDENTIALS');
    expect(again.body['detail']).toContain('ticket');
  });

  it('refuses a ticket once its time to live has passed', async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE]));
    clock.advance(TICKET_TTL_MS + 1);
    const answer = await refused(`${served.ws}?ticket=${value}`);
    expect(answer.status).toBe(401);
    // Nothing left to retry with: the expired ticket was consumed by the refused attempt too.
    clock.advance(-(TICKET_TTL_MS + 1));
    expect((await refused(`${served.ws}?ticket=${value}`)).status).toBe(401);
  });

  it('never carries more than its caller holds: a scope the caller lacks cannot be asked for', async () => {
    const answer = await ticketFor(await auth.bearer('acme', [ECHO_SCOPE]), [ECHO_SCOPE, 'tenants:admin']);
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'tenants:admin' });
  });

  it('a ticket narrowed to fewer scopes opens nothing that needs the others', async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE, 'other:scope']), ['other:scope']);
    const answer = await refused(`${served.ws}?ticket=${value}`);
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: ECHO_SCOPE });
  });

  it("another tenant's ticket speaks for that tenant only: naming a different tenant is refused", async () => {
    const value = await ticket(await auth.bearer('globex', [ECHO_SCOPE]));
    const answer = await refused(`${served.ws}?ticket=${value}`, { headers: { 'x-blocks-tenant': 'acme' } });
    expect(answer.status).toBe(403);
    expect(answer.body['code']).toBe('TENANT_MISMATCH');
    const client = await open(`${served.ws}?ticket=${await ticket(await auth.bearer('globex', [ECHO_SCOPE]))}`);
    expect((await helloOf(client)).tenant).toBe('globex');
    client.socket.close();
  });

  it('is taken only on a WebSocket upgrade: a plain request with ?ticket= has no credential', async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE]));
    const response = await fetch(`${served.base}${PREFIX}/ws-tickets?ticket=${value}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(401);
    // And the ticket is still good for the upgrade it was made for.
    const client = await open(`${served.ws}?ticket=${value}`);
    client.socket.close();
  });

  it('opens exactly one connection when several upgrades race with the same ticket', async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE]));
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => connect(`${served.ws}?ticket=${value}`)));
    const opened = outcomes.filter((outcome) => outcome.kind === 'open');
    expect(opened).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome.kind === 'refused' && outcome.status === 401)).toHaveLength(7);
    for (const client of opened) client.socket.close();
  });

  it('never writes a ticket to the log: the request line shows the URL with the ticket redacted', async () => {
    const value = await ticket(await auth.bearer('acme', [ECHO_SCOPE]));
    const client = await open(`${served.ws}?ticket=${value}`);
    client.socket.close();
    await client.closed;
    // A second use is refused and logged, URL included.
    await refused(`${served.ws}?ticket=${value}&x=1`);
    const lines = logLines.filter((line) => line.includes('/echo?ticket='));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((line) => line.includes('ticket=[redacted]&x=1'))).toBe(true);
    expect(logLines.filter((line) => line.includes(value))).toEqual([]);
  });
});

describe('WebSocket connection limits', () => {
  it('closes a connection that sends a message over max_payload_bytes with 1009', async () => {
    const client = await open(served.ws, { headers: await auth.bearer('acme', [ECHO_SCOPE]) });
    await client.next();
    client.socket.send(Buffer.alloc(LIMITS.maxPayloadBytes));
    expect((await client.next()).data.length).toBe(LIMITS.maxPayloadBytes);
    client.socket.send(Buffer.alloc(LIMITS.maxPayloadBytes + 1));
    expect((await client.closed).code).toBe(CLOSE_CODES.MESSAGE_TOO_BIG);
  });

  it('closes a client that reads too slowly, once its send buffer passes the bound, with the configured code and a reason', async () => {
    const client = await open(served.ws, { headers: await auth.bearer('acme', [ECHO_SCOPE]) });
    await client.next();
    client.socket.pause();
    // 64 MiB offered; the server may queue 1 MiB beyond what the kernel buffers hold.
    const count = 256;
    const size = 256 * 1024;
    client.socket.send(`flood:${count}:${size}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.socket.resume();
    const closed = await client.closed;
    expect(closed).toEqual({ code: CLOSE_CODES.POLICY_VIOLATION, reason: 'send buffer exceeded: the client reads too slowly' });
    expect(client.pending.length).toBeLessThan(count);
  });

  it('cuts a connection that stops answering pings', async () => {
    const client = await open(served.ws, { headers: await auth.bearer('acme', [ECHO_SCOPE]), autoPong: false });
    const started = Date.now();
    const closed = await client.closed;
    expect(closed.code).toBe(1006);
    expect(Date.now() - started).toBeLessThan(LIMITS.pingIntervalMs * 4);
  });

  it('keeps a connection that answers pings', async () => {
    const client = await open(served.ws, { headers: await auth.bearer('acme', [ECHO_SCOPE]) });
    await client.next();
    await new Promise((resolve) => setTimeout(resolve, LIMITS.pingIntervalMs * 4));
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    client.socket.send('still here');
    expect(String((await client.next()).data)).toBe('still here');
    client.socket.close();
  });

  it('closes every connection with 1001 and a reason when the app closes', async () => {
    const other = await startApp();
    const headers = await auth.bearer('acme', [ECHO_SCOPE]);
    const clients = await Promise.all([open(other.ws, { headers }), open(other.ws, { headers })]);
    await Promise.all(clients.map((client) => client.next()));
    await other.app.close();
    for (const client of clients) expect(await client.closed).toEqual({ code: CLOSE_CODES.GOING_AWAY, reason: 'server shutting down' });
  });
});
