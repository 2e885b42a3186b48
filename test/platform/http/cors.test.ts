import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import type { CorsConfig } from '../../../src/platform/http/cors.ts';
import { startTestBlocks, testConfig } from '../../support/blocks.ts';
import type { RunningBlocks } from '../../../src/start.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

const { access, ...kit } = await testAccess();
const auth = await kit.bearer('t1', ['things:write']);

const ALLOWED = 'https://app.example.com';
const OTHER = 'https://evil.example.net';

async function serve(cors: CorsConfig): Promise<{ app: HttpServer; base: string }> {
  const app = await testHttpServer(access, {
    cors,
  });
  app.post('/things', { config: { scope: 'things:write' } }, async () => ({ ok: true }));
  return { app, base: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

const preflight = (base: string, origin: string) =>
  fetch(`${base}/things`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
  });

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((name) => name.startsWith('access-control-'));

describe('CORS', () => {
  describe('with origins configured', () => {
    let server: { app: HttpServer; base: string };
    beforeAll(async () => {
      server = await serve({
        origins: [ALLOWED],
        methods: ['get', 'POST'],
        headers: ['authorization', 'content-type'],
        max_age: 600_000,
        credentials: true,
      });
    });
    afterAll(() => server.app.close());

    it('answers a preflight from an allowed origin itself', async () => {
      const res = await preflight(server.base, ALLOWED);
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST');
      expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
      expect(res.headers.get('access-control-max-age')).toBe('600');
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      expect(res.headers.get('vary')).toMatch(/origin/i);
    });

    it('refuses a preflight from any other origin with no Access-Control header', async () => {
      const res = await preflight(server.base, OTHER);
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({ code: 'CORS_ORIGIN_NOT_ALLOWED' });
      expect(corsHeaders(res)).toEqual([]);
    });

    it('refuses an origin that only starts like an allowed one', async () => {
      const res = await preflight(server.base, `${ALLOWED}.evil.net`);
      expect(res.status).toBe(403);
      expect(corsHeaders(res)).toEqual([]);
    });

    it('marks actual answers for allowed origins only, and exposes the correlation id', async () => {
      const allowed = await fetch(`${server.base}/things`, { method: 'POST', headers: { ...auth, origin: ALLOWED } });
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(allowed.headers.get('access-control-expose-headers')).toContain('x-correlation-id');
      // A browser script must be able to read which scope a 403 wants.
      expect(allowed.headers.get('access-control-expose-headers')).toContain('www-authenticate');
      const other = await fetch(`${server.base}/things`, { method: 'POST', headers: { ...auth, origin: OTHER } });
      expect(other.status).toBe(200);
      expect(corsHeaders(other)).toEqual([]);
      expect(other.headers.get('vary')).toMatch(/origin/i);
    });

    it('marks error answers too, so a browser script can read the problem', async () => {
      const res = await fetch(`${server.base}/nowhere`, { headers: { origin: ALLOWED } });
      expect(res.status).toBe(404);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      // A missing credential included: the script must be able to read why it was refused.
      const refused = await fetch(`${server.base}/things`, { method: 'POST', headers: { origin: ALLOWED } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('access-control-allow-origin')).toBe(ALLOWED);
      expect(((await refused.json()) as { code: string }).code).toBe('AUTHENTICATION_REQUIRED');
    });

    it('leaves a plain OPTIONS (not a preflight) to the router', async () => {
      const res = await fetch(`${server.base}/things`, { method: 'OPTIONS', headers: { origin: ALLOWED } });
      expect(res.status).toBe(405);
    });
  });

  it('refuses to allow credentials for every origin', async () => {
    await expect(serve({ origins: ['*'], methods: ['GET'], headers: [], max_age: 0, credentials: true })).rejects.toThrow(
      /credentials cannot be allowed for every origin/,
    );
  });

  describe('blocks start with the default configuration', () => {
    let blocks: RunningBlocks;
    beforeAll(async () => {
      blocks = await startTestBlocks({ config: testConfig(), roles: ['gateway', 'autonomous'] });
    });
    afterAll(() => blocks.close());

    it('grants no cross-origin access on any port', async () => {
      for (const url of Object.values(blocks.urls)) {
        const res = await preflight(url, ALLOWED);
        expect(res.status).toBe(403);
        expect(corsHeaders(res)).toEqual([]);
        const get = await fetch(`${url}/health/live`, { headers: { origin: ALLOWED } });
        expect(get.status).toBe(200);
        expect(corsHeaders(get)).toEqual([]);
      }
    });
  });
});
