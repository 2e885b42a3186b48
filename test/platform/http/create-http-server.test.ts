import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type AddressInfo } from 'node:net';
import { Type } from 'typebox';
import { createHttpServer, type HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';
import { BlocksError } from '../../../src/platform/errors.ts';
import { testAccess } from '../../support/http-access.ts';
import { PUBLIC_SCOPE } from '../../../src/platform/http/access.ts';

const { access, ...kit } = await testAccess();
// The routes under test declare these scopes; access itself is covered by access.test.ts.
const auth = await kit.bearer('t1', ['things:write', 'x']);

const bare = (overrides: { checks?: Parameters<typeof createHttpServer>[0]['checks']; accepting?: () => boolean } = {}) =>
  createHttpServer({
    name: 'test',
    version: '9.9.9',
    logger: createLogger({ level: 'silent', service: 'test', version: '9.9.9' }),
    metrics: createMetrics(),
    bodyLimitBytes: 4096,
    keepAliveTimeoutMs: 5000,
    checks: overrides.checks ?? [],
    logRequests: false,
    accepting: overrides.accepting ?? (() => true),
    access,
    anonymous: { metrics: true, docs: true },
  });

const build = async (overrides: Parameters<typeof bare>[0] = {}): Promise<HttpServer> => {
  const app = await bare(overrides);
  app.post(
    '/things/:id',
    {
      config: { scope: 'things:write' },
      schema: {
        params: Type.Object({ id: Type.String({ pattern: '^[a-z]+$' }) }),
        body: Type.Object({ size: Type.Enum(['s', 'm']), count: Type.Integer() }, { additionalProperties: false }),
      },
    },
    async (request) => ({ id: request.params.id }),
  );
  app.get('/boom', { config: { scope: 'x' } }, async () => {
    throw new Error('secret internal detail');
  });
  app.get('/coded', { config: { scope: 'x' } }, async () => {
    throw new BlocksError('BUDGET_EXCEEDED', 402, 'Budget of tenant t1 is spent', { extensions: { tenant: 't1' } });
  });
  await app.ready();
  return app;
};

describe('HTTP server factory', () => {
  let app: HttpServer;
  beforeAll(async () => {
    app = await build();
  });
  afterAll(() => app.close());

  const post = (payload: string, contentType = 'application/json') =>
    app.inject({ method: 'POST', url: '/things/abc', payload, headers: { ...auth, 'content-type': contentType } });

  it('answers schema violations with a 400 problem naming every bad field', async () => {
    const res = await post(JSON.stringify({ size: 'xl', count: '3', extra: true }));
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', type: 'urn:blocks:problem:validation-failed' });
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { location: 'body', pointer: '/extra', message: 'is not allowed' },
        { location: 'body', pointer: '/size', message: 'must be one of: s, m' },
        expect.objectContaining({ location: 'body', pointer: '/count' }),
      ]),
    );
  });

  it('does not coerce types: a numeric string is not an integer', async () => {
    expect((await post(JSON.stringify({ size: 's', count: '3' }))).statusCode).toBe(400);
    expect((await post(JSON.stringify({ size: 's', count: 3 }))).statusCode).toBe(200);
  });

  it('reports a missing field by its pointer', async () => {
    const body = (await post(JSON.stringify({ size: 's' }))).json();
    expect(body.errors).toContainEqual({ location: 'body', pointer: '/count', message: 'is required' });
  });

  it.each([
    ['malformed JSON', '{"size":', 'application/json', 400, 'MALFORMED_JSON'],
    ['empty body', '', 'application/json', 400, 'EMPTY_BODY'],
    ['oversized body', JSON.stringify({ size: 's', count: 1, pad: 'x'.repeat(5000) }), 'application/json', 413, 'BODY_TOO_LARGE'],
    ['text/plain body', 'size=s', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['prototype poisoning', '{"size":"s","count":1,"__proto__":{"admin":true}}', 'application/json', 400, 'MALFORMED_JSON'],
  ])('answers %s with a 4xx problem', async (_name, payload, type, status, code) => {
    const res = await post(payload, type);
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status, code });
  });

  it('validates path parameters', async () => {
    const res = await app.inject({ method: 'POST', url: '/things/ABC', payload: { size: 's', count: 1 }, headers: auth });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors[0]).toMatchObject({ location: 'params', pointer: '/id' });
  });

  it('hides internal errors behind a 500 problem with the correlation id', async () => {
    const res = await app.inject({ method: 'GET', url: '/boom', headers: { ...auth, 'x-correlation-id': 'corr-500' } });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('secret internal detail');
    expect(res.json()).toMatchObject({ code: 'INTERNAL', correlation_id: 'corr-500' });
  });

  it('maps BlocksError to its status, code and extensions', async () => {
    const res = await app.inject({ method: 'GET', url: '/coded', headers: auth });
    expect(res.statusCode).toBe(402);
    expect(res.json()).toMatchObject({
      code: 'BUDGET_EXCEEDED',
      detail: 'Budget of tenant t1 is spent',
      tenant: 't1',
      title: 'Payment Required',
    });
  });

  it('answers an unknown path with 404 and a wrong method on a known path with 405 and Allow', async () => {
    const missing = await app.inject({ method: 'GET', url: '/nothing-here' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('NOT_FOUND');
    const wrong = await app.inject({ method: 'DELETE', url: '/things/abc' });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.json().code).toBe('METHOD_NOT_ALLOWED');
  });

  it('echoes a sane correlation id and replaces a hostile one', async () => {
    const kept = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-correlation-id': 'abc-123' } });
    expect(kept.headers['x-correlation-id']).toBe('abc-123');
    const replaced = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-correlation-id': 'bad id\r\n<script>' } });
    expect(replaced.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('continues the caller trace and answers with a new span of it', async () => {
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const res = await app.inject({ method: 'GET', url: '/health/live', headers: { traceparent: parent } });
    const [version, traceId, spanId, flags] = String(res.headers.traceparent).split('-');
    expect([version, traceId, flags]).toEqual(['00', '0af7651916cd43dd8448eb211c80319c', '01']);
    expect(spanId).not.toBe('b7ad6b7169203331');
    const fresh = await app.inject({ method: 'GET', url: '/health/live', headers: { traceparent: 'garbage' } });
    expect(String(fresh.headers.traceparent)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('serves the OpenAPI document with every route', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/things/{id}', '/health', '/health/ready', '/health/live', '/metrics']),
    );
  });

  it('counts requests per route on /metrics', async () => {
    await post(JSON.stringify({ size: 's', count: 1 }));
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/things\/:id",status_code="200"\} [1-9]/);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{.*route="\/things\/:id"/);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });
});

describe('routes without a declared scope', () => {
  it('stop the server from starting', async () => {
    const app = await bare();
    expect(() => app.get('/open', async () => 'x')).toThrow(/declares no scope/);
    await app.close();
  });
});

describe('health', () => {
  it('reports each dependency with its state and latency, and readiness from the required ones', async () => {
    const app = await build({
      checks: [
        { name: 'db', required: true, check: async () => 1.5 },
        {
          name: 'cache',
          required: false,
          check: async () => {
            throw new Error('connection refused');
          },
        },
      ],
    });
    const health = (await app.inject({ method: 'GET', url: '/health' })).json();
    expect(health).toMatchObject({ status: 'degraded', version: '9.9.9' });
    expect(health.dependencies.db).toEqual({ status: 'up', required: true, latency_ms: 1.5 });
    expect(health.dependencies.cache).toMatchObject({ status: 'down', required: false, error: 'connection refused' });
    expect(new Date(health.timestamp).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect([ready.statusCode, ready.json()]).toEqual([200, { ready: true }]);
    await app.close();
  });

  it('is not ready while a required dependency is down or hangs', async () => {
    const app = await build({ checks: [{ name: 'db', required: true, check: () => new Promise<number>(() => undefined) }] });
    const started = Date.now();
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect([ready.statusCode, ready.json()]).toEqual([503, { ready: false }]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await app.inject({ method: 'GET', url: '/health' })).json().status).toBe('unhealthy');
    expect((await app.inject({ method: 'GET', url: '/health/live' })).json()).toEqual({ live: true });
    await app.close();
  });

  it('is not ready while the process is not accepting traffic', async () => {
    const app = await build({ accepting: () => false });
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    await app.close();
  });
});

describe('shutting down', () => {
  it('answers a request that arrives while the server drains with a 503 problem document', async () => {
    const app = await bare();
    let release: () => void = () => undefined;
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    app.get('/slow', { config: { scope: PUBLIC_SCOPE } }, async () => {
      entered();
      await new Promise<void>((resolve) => (release = resolve));
      return { done: true };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    // One keep-alive connection: a request in flight holds the drain open, the next one arrives during it.
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await inside;
    const closed = app.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    socket.destroy();
    await closed;
    const second = received.slice(received.indexOf('HTTP/1.1', 1));
    expect(second).toMatch(/^HTTP\/1\.1 503 /);
    expect(second).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    const body = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4)) as { status: number; code: string };
    expect(body).toMatchObject({ status: 503, code: 'SHUTTING_DOWN' });
  });
});
