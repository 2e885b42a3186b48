import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { callerOf } from '../../../src/platform/http/caller.ts';
import { createLogger } from '../../../src/platform/logger.ts';
import { createMetrics } from '../../../src/platform/telemetry/metrics.ts';

const keyId = (key: string): string => `key_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;

describe('callerOf', () => {
  it('defaults to the default tenant and no key', () => {
    expect(callerOf({})).toEqual({ tenant: 'default', apiKeyId: null });
  });

  it('names the key by a hash of it, from a bearer token or x-api-key, never the key itself', () => {
    expect(callerOf({ authorization: 'Bearer sk-live-123' })).toEqual({ tenant: 'default', apiKeyId: keyId('sk-live-123') });
    expect(callerOf({ 'x-api-key': 'sk-live-123', 'x-blocks-tenant': 'acme' })).toEqual({ tenant: 'acme', apiKeyId: keyId('sk-live-123') });
    expect(callerOf({ authorization: 'Bearer a' }).apiKeyId).not.toBe(callerOf({ authorization: 'Bearer b' }).apiKeyId);
    expect(callerOf({ authorization: 'Basic dXNlcjpwYXNz' }).apiKeyId).toBeNull();
  });

  it.each(['', 'ACME', 'a b', '../etc', 'x'.repeat(64), 'acme;drop'])('refuses the tenant %j', (tenant) => {
    expect(() => callerOf({ 'x-blocks-tenant': tenant })).toThrow(expect.objectContaining({ code: 'INVALID_TENANT', status: 400 }));
  });
});

describe('request.caller', () => {
  let app: HttpServer;
  beforeAll(async () => {
    app = await createHttpServer({
      name: 'test',
      version: '1.0.0',
      logger: createLogger({ level: 'silent', service: 'test', version: '1.0.0' }),
      metrics: createMetrics(),
      bodyLimitBytes: 4096,
      keepAliveTimeoutMs: 5000,
      checks: [],
      logRequests: false,
      accepting: () => true,
    });
    app.get('/who', { config: { scope: 'x' } }, async (request) => request.caller);
    await app.ready();
  });
  afterAll(() => app.close());

  it('is set on every request', async () => {
    const res = await app.inject({ url: '/who', headers: { 'x-blocks-tenant': 'acme', authorization: 'Bearer k' } });
    expect(res.json()).toEqual({ tenant: 'acme', apiKeyId: keyId('k') });
  });

  it('answers a bad tenant header with a 400 problem that still carries the correlation id', async () => {
    const res = await app.inject({ url: '/who', headers: { 'x-blocks-tenant': 'Not A Tenant', 'x-correlation-id': 'corr-1' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.headers['x-correlation-id']).toBe('corr-1');
    expect(res.json()).toMatchObject({ code: 'INVALID_TENANT', status: 400 });
  });
});
