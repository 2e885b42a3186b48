import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Type } from 'typebox';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { jsonDepthExceeds } from '../../../src/platform/http/json-limits.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

describe('JSON depth', () => {
  it('counts nesting of arrays and objects, ignoring brackets inside strings and escaped quotes', () => {
    expect(jsonDepthExceeds(nested(32), 32)).toBe(false);
    expect(jsonDepthExceeds(nested(33), 32)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[{"c":1}]}}', 4)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":[{"c":1}]}}', 3)).toBe(true);
    expect(jsonDepthExceeds(`{"s":"${'['.repeat(100)}"}`, 1)).toBe(false);
    expect(jsonDepthExceeds(`{"s":"\\"${'{'.repeat(100)}"}`, 1)).toBe(false);
    expect(jsonDepthExceeds(`[[[["\\\\"]]]]`, 3)).toBe(true);
  });
});

describe('JSON body limits', () => {
  let app: HttpServer;
  let base: string;
  let auth: Record<string, string>;
  beforeAll(async () => {
    const { access, ...kit } = await testAccess();
    auth = await kit.bearer('t1', ['x']);
    app = await testHttpServer(access, {
      bodyLimitBytes: 1024 * 1024,
      jsonMaxDepth: 8,
    });
    app.post('/echo', { config: { scope: 'x' }, schema: { body: Type.Unknown() } }, async (request) => ({ body: request.body }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => app.close());

  const post = (body: string, contentType = 'application/json') =>
    fetch(`${base}/echo`, { method: 'POST', headers: { ...auth, 'content-type': contentType }, body });

  it('accepts a body at the limit', async () => {
    const res = await post(JSON.stringify({ a: { b: { c: { d: { e: { f: { g: [1] } } } } } } }));
    expect(res.status).toBe(200);
  });

  it('refuses a body one level deeper with a problem naming the limit', async () => {
    const res = await post(JSON.stringify({ a: { b: { c: { d: { e: { f: { g: [[1]] } } } } } } }));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await res.json()) as { code: string; detail: string; correlation_id: string };
    expect(problem.code).toBe('JSON_TOO_DEEP');
    expect(problem.detail).toContain('8');
    expect(problem.detail).toContain('http.json_max_depth');
    expect(problem.correlation_id).toBe(res.headers.get('x-correlation-id'));
  });

  it('survives a 100k-deep array and a 100k-deep object, and keeps serving', async () => {
    for (const [open, close] of [
      ['[', ']'],
      ['{"a":', '}'],
    ]) {
      const res = await post(`${(open ?? '').repeat(100_000)}1${(close ?? '').repeat(100_000)}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('JSON_TOO_DEEP');
    }
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
  });

  it('refuses a deep body even when it is also malformed, before parsing it', async () => {
    const res = await post('['.repeat(100_000));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('JSON_TOO_DEEP');
  });

  it('keeps fastify parser behaviour: malformed, empty, prototype poisoning', async () => {
    expect(((await (await post('{"a":')).json()) as { code: string }).code).toBe('MALFORMED_JSON');
    expect(((await (await post('')).json()) as { code: string }).code).toBe('EMPTY_BODY');
    const poisoned = await post('{"__proto__":{"admin":true}}');
    expect(poisoned.status).toBe(400);
  });

  it('still refuses a body over http.body_limit_bytes with 413', async () => {
    const res = await post(JSON.stringify({ pad: 'x'.repeat(1100 * 1024) }));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('BODY_TOO_LARGE');
  });

  it('applies to application/json with parameters', async () => {
    const res = await post(nested(20), 'application/json; charset=utf-8');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('JSON_TOO_DEEP');
  });
});
