import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

const API_CSP = "default-src 'none'; frame-ancestors 'none'";

describe('security headers', () => {
  let app: HttpServer;
  let base: string;
  let auth: Record<string, string>;
  beforeAll(async () => {
    const { access, ...kit } = await testAccess();
    auth = await kit.bearer('t1', ['x']);
    app = await testHttpServer(access);
    app.get('/boom', { config: { scope: 'x' } }, async () => {
      throw new Error('boom');
    });
    // As a proxied upstream might: a banner that must not reach the client.
    app.get('/bannered', { config: { scope: 'x' } }, async (_request, reply) =>
      reply.header('server', 'nginx/1.2.3').header('x-powered-by', 'Express').send({ ok: true }),
    );
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => app.close());

  const expectApiHeaders = (res: Response) => {
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('content-security-policy')).toBe(API_CSP);
    expect(res.headers.get('server')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
  };

  it('puts them on successful answers, errors, refusals, 404s and 405s alike', async () => {
    for (const [path, headers, status] of [
      ['/health/live', {}, 200],
      ['/boom', auth, 500],
      ['/boom', {}, 401],
      ['/nowhere', {}, 404],
    ] as const) {
      const res = await fetch(`${base}${path}`, { headers });
      expect(res.status).toBe(status);
      expectApiHeaders(res);
    }
    const res = await fetch(`${base}/boom`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expectApiHeaders(res);
  });

  it('strips server banners a handler or upstream set', async () => {
    const res = await fetch(`${base}/bannered`, { headers: auth });
    expect(res.status).toBe(200);
    expectApiHeaders(res);
  });

  it('sends no HSTS over plain HTTP (browsers ignore it there and it would pin a host that has no TLS)', async () => {
    const res = await fetch(`${base}/health/live`);
    expect(res.headers.get('strict-transport-security')).toBeNull();
  });

  it('gives the /docs page a policy that lets its own scripts run and nothing inline', async () => {
    const res = await fetch(`${base}/docs/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-(inline|eval)/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    // Every script the page runs is a file from this origin: an inline one would be blocked by the policy.
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\.?\/?[^":]+"/);
      expect(body?.trim()).toBe('');
    }
    // The scripts and styles it references load under the same policy.
    for (const [, src] of html.matchAll(/(?:src|href)="\.\/([^"]+)"/g)) {
      const asset = await fetch(`${base}/docs/${src}`);
      expect(asset.status, src).toBe(200);
      await asset.arrayBuffer();
    }
  });
});
