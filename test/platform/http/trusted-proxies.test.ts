import { afterEach, describe, expect, it } from 'vitest';
import type { RequestContext } from '../../../src/platform/http/access.ts';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

/**
 * Behind a gateway on another host, a service sees the gateway's address; the client's must come
 * from X-Forwarded-For, believed only from the proxies configured, or anyone could claim any address.
 */
describe('trusted proxies', () => {
  let app: HttpServer | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const serve = async (trustedProxies: readonly string[]) => {
    const seen: RequestContext[] = [];
    const kit = await testAccess({ contextPolicy: { check: (_caller, context) => (seen.push(context), null) } });
    app = await testHttpServer(kit.access, {
      trustedProxies,
    });
    app.get('/thing', { config: { scope: 'things:read' } }, async (request) => ({ ip: request.ip }));
    const headers = { ...(await kit.bearer('acme', ['things:read'])), 'x-forwarded-for': '203.0.113.7' };
    return { seen, call: () => (app as HttpServer).inject({ method: 'GET', url: '/thing', headers, remoteAddress: '10.1.2.3' }) };
  };

  it('ignores X-Forwarded-For from an address that is not a trusted proxy', async () => {
    const { seen, call } = await serve([]);
    expect((await call()).json()).toEqual({ ip: '10.1.2.3' });
    expect(seen[0]?.ip).toBe('10.1.2.3');
  });

  it("takes the client's address from a trusted proxy, for the context rules as for the route", async () => {
    const { seen, call } = await serve(['10.0.0.0/8']);
    expect((await call()).json()).toEqual({ ip: '203.0.113.7' });
    expect(seen[0]?.ip).toBe('203.0.113.7');
  });
});
