import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyJsonOps, compileTransforms, type TransformConfig } from '../../src/gateway/transforms.ts';
import { startTestBlocks, testConfig } from '../support/blocks.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { testCredentials } from '../support/credentials.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A service stand-in behind the gateway: records what it was sent, answers JSON (or a problem for /missing). */
function startEcho(): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const body: unknown = raw ? JSON.parse(raw) : undefined;
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/api/v1/autonomous/missing')) {
        res.writeHead(404, { 'content-type': 'application/problem+json', 'x-internal': 'yes' });
        res.end(JSON.stringify({ type: 'urn:x', title: 'Not Found', status: 404, code: 'NOT_FOUND', detail: 'no', secret: 's' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-internal': 'yes', 'x-upstream-id': 'u1' });
      res.end(JSON.stringify({ id: 'a1', secret: 's', owner: { email: 'e@x', name: 'n' }, list: [1, 2] }));
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen })),
  );
}

const TRANSFORMS: TransformConfig[] = [
  {
    route: 'POST /api/v1/autonomous/things/:id',
    request: {
      add_headers: { 'x-added': 'gw', 'x-kept': 'gw' },
      remove_headers: ['x-drop'],
      rename_headers: { 'x-old': 'x-new' },
      add_json: { source: 'gateway', 'meta.via': 'gw', name: 'not-used' },
      remove_json: ['password', 'profile.ssn'],
      rename_json: { user_name: 'name', 'profile.tel': 'contact.phone' },
    },
    response: {
      remove_headers: ['x-internal'],
      rename_headers: { 'x-upstream-id': 'x-request-source' },
      add_headers: { 'cache-control': 'no-store' },
      remove_json: ['secret', 'owner.email'],
      rename_json: { id: 'thing_id' },
      add_json: { 'links.self': '/things' },
    },
  },
  { route: '/api/v1/autonomous/missing', response: { remove_headers: ['x-internal'], remove_json: ['code', 'secret'] } },
  { route: 'GET /health/live', response: { add_json: { gateway: true }, add_headers: { 'x-live': 'yes' } } },
];

describe('gateway transforms', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let blocks: RunningBlocks;
  let gateway: string;
  // The proxied routes take any authenticated caller (the service behind decides the scope).
  let auth: Record<string, string>;
  beforeAll(async () => {
    echo = await startEcho();
    const config = testConfig(
      {},
      {
        services: { autonomous: { url: echo.url }, collaborative: { url: echo.url } },
        gateway: { transforms: TRANSFORMS },
      },
    );
    blocks = await startTestBlocks({ config, roles: ['gateway'] });
    gateway = blocks.urls.gateway ?? '';
    auth = await testCredentials(blocks).headers('default', ['ai:read']);
  });
  afterAll(async () => {
    await blocks.close();
    await new Promise((resolve) => echo.server.close(resolve));
  });

  it('rewrites request headers and JSON fields before the upstream sees them', async () => {
    const res = await fetch(`${gateway}/api/v1/autonomous/things/t1`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'x-drop': '1', 'x-old': 'o', 'x-kept': 'client' },
      body: JSON.stringify({ user_name: 'ann', password: 'p', profile: { ssn: '1', tel: '555', city: 'x' } }),
    });
    expect(res.status).toBe(200);
    const sent = echo.seen.at(-1);
    expect(sent?.url).toBe('/api/v1/autonomous/things/t1');
    expect(sent?.headers['x-added']).toBe('gw');
    expect(sent?.headers['x-kept']).toBe('client');
    expect(sent?.headers['x-drop']).toBeUndefined();
    expect(sent?.headers['x-old']).toBeUndefined();
    expect(sent?.headers['x-new']).toBe('o');
    expect(sent?.headers['x-correlation-id']).toBe(res.headers.get('x-correlation-id'));
    // The service decides access again itself (zero trust), so the credential reaches it.
    expect(sent?.headers['x-api-key']).toBe(auth['x-api-key']);
    expect(sent?.body).toEqual({
      name: 'ann',
      profile: { city: 'x' },
      contact: { phone: '555' },
      source: 'gateway',
      meta: { via: 'gw' },
    });
  });

  it('rewrites response headers and JSON fields, buffering the proxied stream', async () => {
    const res = await fetch(`${gateway}/api/v1/autonomous/things/t1`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-internal')).toBeNull();
    expect(res.headers.get('x-upstream-id')).toBeNull();
    expect(res.headers.get('x-request-source')).toBe('u1');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-correlation-id')).toMatch(/.+/);
    const text = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(JSON.parse(text)).toEqual({ thing_id: 'a1', owner: { name: 'n' }, list: [1, 2], links: { self: '/things' } });
  });

  it('leaves other methods and paths alone', async () => {
    const res = await fetch(`${gateway}/api/v1/autonomous/things/t1`, { method: 'PUT', headers: { ...auth, 'x-drop': '1' } });
    expect(res.status).toBe(200);
    expect(echo.seen.at(-1)?.headers['x-drop']).toBe('1');
    expect(res.headers.get('x-internal')).toBe('yes');
    expect(((await res.json()) as { secret: string }).secret).toBe('s');
    await fetch(`${gateway}/api/v1/autonomous/things/t1/sub`, {
      method: 'POST',
      headers: { ...auth, 'x-drop': '1', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(echo.seen.at(-1)?.headers['x-drop']).toBe('1');
  });

  it('never rewrites a problem document: its fields and correlation id reach the client', async () => {
    const res = await fetch(`${gateway}/api/v1/autonomous/missing`, { headers: auth });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-internal')).toBeNull();
    expect(res.headers.get('x-correlation-id')).toMatch(/.+/);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND', secret: 's', status: 404 });
  });

  it('applies to routes the gateway answers itself', async () => {
    const res = await fetch(`${gateway}/health/live`);
    expect(res.headers.get('x-live')).toBe('yes');
    expect(await res.json()).toEqual({ live: true, gateway: true });
  });

  it('refuses to start with an invalid transform, naming the entry', async () => {
    const bad = (transforms: unknown) =>
      startTestBlocks({ config: testConfig({}, { gateway: { transforms } }), roles: ['gateway', 'autonomous', 'collaborative'] });
    await expect(bad([{ route: '/ok' }, { route: 'FETCH /x' }])).rejects.toThrow(
      /gateway\.transforms\[1\] \(FETCH \/x\): unknown method FETCH/,
    );
  });
});

describe('compileTransforms', () => {
  const error = (config: TransformConfig) => {
    try {
      compileTransforms([config]);
      return 'compiled';
    } catch (e) {
      return (e as Error).message;
    }
  };

  it('refuses transforms that would touch the correlation id, trace context or framing', () => {
    expect(error({ route: '/x', response: { remove_headers: ['X-Correlation-Id'] } })).toBe(
      'gateway.transforms[0] (/x): response: remove_headers: X-Correlation-Id may not be changed by a transform',
    );
    expect(error({ route: '/x', request: { rename_headers: { 'x-a': 'traceparent' } } })).toMatch(/traceparent may not be changed/);
    expect(error({ route: '/x', request: { add_headers: { 'content-length': '1' } } })).toMatch(/content-length may not be changed/);
  });

  it('refuses bad routes, header names and JSON paths', () => {
    expect(error({ route: 'GET x' })).toMatch(/path must start with \//);
    expect(error({ route: 'GET /a/*/b' })).toMatch(/\* may only be the last segment/);
    expect(error({ route: 'GET /a b' })).toMatch(/route must be/);
    expect(error({ route: '/x', request: { add_headers: { 'bad header': 'v' } } })).toMatch(/is not a header name/);
    expect(error({ route: '/x', request: { add_json: { 'a..b': 1 } } })).toMatch(/empty segment/);
    expect(error({ route: '/x', request: { add_json: { '__proto__.admin': true } } })).toMatch(/prototype member/);
    expect(error({ route: '/x', response: { rename_json: { a: 'constructor.prototype' } } })).toMatch(/prototype member/);
  });

  it('matches METHOD patterns exactly, :params as one segment, * as the rest, and prefixes on segment boundaries', () => {
    const [exact, rest, any, prefix] = compileTransforms([
      { route: 'GET /a/:id' },
      { route: 'post /a/*' },
      { route: '* /b' },
      { route: '/api/v1/x/' },
    ]);
    expect(exact?.matches('GET', '/a/1')).toBe(true);
    expect(exact?.matches('GET', '/a/1/2')).toBe(false);
    expect(exact?.matches('POST', '/a/1')).toBe(false);
    expect(rest?.matches('POST', '/a')).toBe(true);
    expect(rest?.matches('POST', '/a/1/2')).toBe(true);
    expect(rest?.matches('POST', '/ab')).toBe(false);
    expect(any?.matches('DELETE', '/b')).toBe(true);
    expect(prefix?.matches('GET', '/api/v1/x')).toBe(true);
    expect(prefix?.matches('GET', '/api/v1/x/y')).toBe(true);
    expect(prefix?.matches('GET', '/api/v1/xy')).toBe(false);
  });

  it('adds JSON fields only when absent and never walks through non-objects', () => {
    const [t] = compileTransforms([{ route: '/x', request: { add_json: { a: 1, 'b.c': 2, 'list.x': 3, obj: { k: 1 } } } }]);
    const body: Record<string, unknown> = { a: 0, list: [1] };
    applyJsonOps(body, t!.request!);
    expect(body).toEqual({ a: 0, b: { c: 2 }, list: [1], obj: { k: 1 } });
    const again: Record<string, unknown> = {};
    applyJsonOps(again, t!.request!);
    (again.obj as { k: number }).k = 9;
    const third: Record<string, unknown> = {};
    applyJsonOps(third, t!.request!);
    expect(third.obj).toEqual({ k: 1 });
  });
});
