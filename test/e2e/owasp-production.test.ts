import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connect, type SecureVersion } from 'node:tls';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { CONFIG_DIR, captureLogs, startTestBlocks, tempDir, type CapturedLogs } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { selfSignedCertificate } from '../support/certificates.ts';

// The OWASP tests that need Blocks as production runs it: the production configuration over TLS,
// with the failed-authentication throttle tight enough to reach. Each test calls from a loopback
// address of its own (127.0.0.x), so the throttle one address earns is its alone.

const FAILED_ATTEMPTS = 3;
const dir = tempDir('blocks-owasp-production');
const { certFile, keyFile, ca } = selfSignedCertificate(dir.path);
let blocks: RunningBlocks;
let creds: TestCredentials;
let logs: CapturedLogs;
const agents: Agent[] = [];

beforeAll(async () => {
  const config = loadConfig({
    configDir: CONFIG_DIR,
    env: { BLOCKS_ENV: 'production', BLOCKS_DATA_DIR: join(dir.path, 'data') },
    overrides: {
      tls: { cert: certFile, key: keyFile },
      auth: {
        key_encryption_key: randomBytes(32).toString('base64'),
        failed_attempts: { limit: FAILED_ATTEMPTS, period: 60_000, burst: FAILED_ATTEMPTS },
      },
    },
  });
  logs = captureLogs('error');
  blocks = await startTestBlocks({ config, roles: ['gateway', 'autonomous'], logger: logs.logger });
  creds = testCredentials(blocks);
}, 60_000);

afterAll(async () => {
  await blocks?.close();
  await Promise.all(agents.map((agent) => agent.close()));
  dir.remove();
});

/** An HTTPS client calling from `address` (any 127.0.0.0/8 address is this machine). */
function from(address: string) {
  const agent = new Agent({ localAddress: address, connect: { ca } });
  agents.push(agent);
  return async (method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}) => {
    const answer = await request(`${blocks.urls.gateway as string}${path}`, {
      method: method as 'GET',
      headers: options.headers,
      body: options.body,
      dispatcher: agent,
    });
    const text = await answer.body.text();
    return {
      status: answer.statusCode,
      headers: answer.headers,
      text,
      body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
    };
  };
}

const forgedKey = (): Record<string, string> => ({ 'x-api-key': `bk_${randomBytes(32).toString('base64url')}` });

describe('API2 broken authentication: guessing is throttled', () => {
  it('answers 429 with Retry-After once one address failed too often, even to a valid key; other addresses are not affected', async () => {
    const guesser = from('127.0.0.2');
    const valid = await creds.headers('default', ['identity:admin']);
    const statuses: number[] = [];
    for (let i = 0; i < FAILED_ATTEMPTS + 3 && statuses.at(-1) !== 429; i++) {
      statuses.push((await guesser('GET', '/api/v1/identity/api-keys', { headers: forgedKey() })).status);
    }
    expect(statuses.filter((status) => status === 401).length).toBeGreaterThanOrEqual(FAILED_ATTEMPTS);
    expect(statuses.at(-1)).toBe(429);
    const blocked = await guesser('GET', '/api/v1/identity/api-keys', { headers: valid });
    expect(blocked.status).toBe(429);
    expect(blocked.body['code']).toBe('AUTHENTICATION_THROTTLED');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect((await from('127.0.0.3')('GET', '/api/v1/identity/api-keys', { headers: valid })).status).toBe(200);
  });
});

describe('API6 unrestricted access to sensitive business flows: the token endpoint', () => {
  it('throttles an address guessing client secrets, so the right secret from it is refused too; others get tokens', async () => {
    const client = await blocks.identity.clients.create('default', { name: 'app', scopes: ['service:read'] }, { correlationId: 'owasp' });
    const grant = (secret: string): string =>
      new URLSearchParams({ grant_type: 'client_credentials', client_id: client.client_id, client_secret: secret }).toString();
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const guesser = from('127.0.0.4');
    const statuses: number[] = [];
    for (let i = 0; i < FAILED_ATTEMPTS + 3 && statuses.at(-1) !== 429; i++) {
      statuses.push((await guesser('POST', '/oauth/token', { headers, body: grant(`wrong-${i}`) })).status);
    }
    expect(statuses.filter((status) => status === 401).length).toBeGreaterThanOrEqual(FAILED_ATTEMPTS);
    expect(statuses.at(-1)).toBe(429);
    expect((await guesser('POST', '/oauth/token', { headers, body: grant(client.client_secret) })).status).toBe(429);
    const honest = await from('127.0.0.5')('POST', '/oauth/token', { headers, body: grant(client.client_secret) });
    expect(honest.status).toBe(200);
    expect(honest.body['access_token']).toEqual(expect.any(String));
  });
});

describe('API8 security misconfiguration: the production configuration', () => {
  const handshake = (version: SecureVersion): Promise<string> =>
    new Promise((resolve) => {
      const { port } = new URL(blocks.urls.gateway as string);
      const socket = connect({
        host: '127.0.0.1',
        port: Number(port),
        ca,
        servername: 'localhost',
        minVersion: version,
        maxVersion: version,
      });
      socket.once('secureConnect', () => {
        resolve(socket.getProtocol() ?? 'none');
        socket.destroy();
      });
      socket.once('error', () => resolve('refused'));
    });

  it('serves TLS 1.3 only, with HSTS on every answer', async () => {
    expect(blocks.urls.gateway).toMatch(/^https:/);
    expect(await handshake('TLSv1.3')).toBe('TLSv1.3');
    expect(await handshake('TLSv1.2')).toBe('refused');
    const client = from('127.0.0.6');
    for (const answer of [
      await client('GET', '/health'),
      await client('GET', '/nothing'),
      await client('GET', '/api/v1/identity/api-keys'),
    ]) {
      expect(answer.headers['strict-transport-security']).toMatch(/max-age=\d{8}/);
    }
  });

  it('allows no browser origin, no address a caller sets but public ones, and no password grant', () => {
    const { config } = blocks.platform;
    expect(config.env).toBe('production');
    expect(config.http.cors.origins).toEqual([]);
    expect(config.http.cors.credentials).toBe(false);
    expect(config.ai.egress).toEqual({ allow_private: false, allow: [] });
    expect(config.auth.password_grant).toBe(false);
    expect(config.rate_limits.enabled).toBe(true);
  });

  // Last: it breaks the database under the running services.
  it('answers an internal failure with a bare 500: no message, no stack, only the correlation id to quote; the log has the rest', async () => {
    const client = from('127.0.0.7');
    const key = await creds.headers('default', ['identity:admin']);
    expect((await client('GET', '/api/v1/identity/api-keys', { headers: key })).status).toBe(200);
    await blocks.platform.db.close();
    const answer = await client('GET', '/api/v1/identity/api-keys', { headers: key });
    expect(answer.status).toBe(500);
    expect(answer.body['code']).toBe('INTERNAL');
    const correlationId = answer.body['correlation_id'] as string;
    expect(answer.body['detail']).toBe(`An internal error occurred; quote correlation id ${correlationId} when reporting it.`);
    expect(answer.text).not.toMatch(/PGlite|closed|database|\bat .+:\d+|node_modules|\/src\//i);
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    const logged = logs.lines.find((line) => line['correlation_id'] === correlationId && line['msg'] === 'request failed');
    expect(JSON.stringify(logged)).toMatch(/closed/);
  });
});
