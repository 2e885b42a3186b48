import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, type SecureVersion } from 'node:tls';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/platform/config/load-config.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { CONFIG_DIR, captureLogs, startTestBlocks, tempDir, type CapturedLogs } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { selfSignedCertificate } from '../support/certificates.ts';
import { AI_CONFIG_SECTION } from '../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../src/platform/config/section.ts';
import { testRegistry } from '../support/registry.ts';

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
    sections: testRegistry.configSections,
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

/** The one refill interval of the throttle: one attempt regained per `period / limit`. */
const REFILL_MS = 60_000 / FAILED_ATTEMPTS;

/**
 * Fires `size` requests at once and then, once all are answered, `later` more at once; resolves
 * with how many of each wave got past the throttle (any answer but 429) and how many a wave could
 * fairly have had: the burst, plus what refilled while the waves ran.
 */
async function waves(send: (i: number) => Promise<{ status: number }>, size: number, later: number) {
  const started = Date.now();
  const first = await Promise.all(Array.from({ length: size }, (_, i) => send(i)));
  const second = await Promise.all(Array.from({ length: later }, (_, i) => send(size + i)));
  const passed = (answers: Array<{ status: number }>): number => answers.filter((answer) => answer.status !== 429).length;
  return {
    first: passed(first),
    second: passed(second),
    fair: FAILED_ATTEMPTS + Math.floor((Date.now() - started) / REFILL_MS),
  };
}

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

  it('counts a guess when it starts: of 60 forged keys sent at once at most the burst get past the throttle, and of 150 more none', async () => {
    const guesser = from('127.0.0.8');
    const { first, second, fair } = await waves(() => guesser('GET', '/api/v1/identity/api-keys', { headers: forgedKey() }), 60, 150);
    expect(first).toBeGreaterThan(0);
    expect(first + second).toBeLessThanOrEqual(fair);
  });

  it('lets 60 requests at once through with a valid key the gateway has not seen yet: one check of it in flight, not 60 attempts', async () => {
    const created = await blocks.identity.apiKeys.create(
      'default',
      { name: 'fresh', scopes: ['identity:admin'], expiresAt: null },
      { correlationId: 'owasp' },
    );
    const caller = from('127.0.0.9');
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => caller('GET', '/api/v1/identity/api-keys', { headers: { 'x-api-key': created.key } })),
    );
    expect(answers.map((answer) => answer.status)).toEqual(Array.from({ length: 60 }, () => 200));
  });

  describe('with 10,000 addresses blocked', () => {
    // A Blocks of its own whose blocks last an hour (one failure each), so filling the table outruns no block.
    const tableDir = tempDir('blocks-owasp-blocked-table');
    let second: RunningBlocks;
    beforeAll(async () => {
      const config = loadConfig({
        sections: testRegistry.configSections,
        configDir: CONFIG_DIR,
        env: { BLOCKS_ENV: 'production', BLOCKS_DATA_DIR: join(tableDir.path, 'data') },
        overrides: {
          tls: { cert: certFile, key: keyFile },
          auth: { key_encryption_key: randomBytes(32).toString('base64'), failed_attempts: { limit: 1, period: 3_600_000, burst: 1 } },
        },
      });
      second = await startTestBlocks({ config, roles: ['gateway'], logger: captureLogs('error').logger });
    }, 60_000);
    afterAll(async () => {
      await second?.close();
      tableDir.remove();
    });

    it('keeps blocking a new address: the one blocked longest ago is forgotten instead', async () => {
      const gateway = second.apps.gateway;
      if (gateway === undefined) throw new Error('no gateway');
      const valid = await testCredentials(second).headers('default', ['identity:admin']);
      const keys = (address: string, headers: Record<string, string> = {}) =>
        gateway.inject({ method: 'GET', url: '/api/v1/identity/api-keys', remoteAddress: address, headers });
      // Passed once, the key is one this process knows: its later requests reserve no attempt.
      expect((await keys('10.99.0.1', valid)).statusCode).toBe(200);
      const addresses = Array.from({ length: 10_000 }, (_, i) => `10.77.${i >> 8}.${i & 255}`);
      for (let i = 0; i < addresses.length; i += 500) await Promise.all(addresses.slice(i, i + 500).map((address) => keys(address)));
      expect((await keys(addresses[1] as string, valid)).statusCode).toBe(429);
      expect((await keys('10.78.0.1')).statusCode).toBe(401);
      // Blocked although the table was full: a valid key from it is refused like from any other blocked address.
      expect((await keys('10.78.0.1', valid)).statusCode).toBe(429);
      // The room was made by forgetting the oldest block; the shared allowance still refuses its next guess.
      expect((await keys(addresses[0] as string, valid)).statusCode).toBe(200);
      expect((await keys(addresses[0] as string, forgedKey())).statusCode).toBe(429);
    }, 60_000);
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

  it('counts a token request when it starts: of 60 wrong secrets sent at once at most the burst get past the throttle, and of 150 more none', async () => {
    const client = await blocks.identity.clients.create('default', { name: 'app', scopes: ['service:read'] }, { correlationId: 'owasp' });
    const guesser = from('127.0.0.10');
    const headers = { 'content-type': 'application/x-www-form-urlencoded' };
    const { first, second, fair } = await waves(
      (i) =>
        guesser('POST', '/oauth/token', {
          headers,
          body: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: client.client_id,
            client_secret: `wrong-${i}`,
          }).toString(),
        }),
      60,
      150,
    );
    expect(first).toBeGreaterThan(0);
    expect(first + second).toBeLessThanOrEqual(fair);
  });

  it('gives a successful token request its attempt back: more tokens in a row than the allowance holds', async () => {
    const client = await blocks.identity.clients.create('default', { name: 'app', scopes: ['service:read'] }, { correlationId: 'owasp' });
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: client.client_id,
      client_secret: client.client_secret,
    });
    const honest = from('127.0.0.11');
    const statuses: number[] = [];
    // Three rounds of a whole burst at once: each request in flight holds one attempt until it is answered.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(
        Array.from({ length: FAILED_ATTEMPTS }, () =>
          honest('POST', '/oauth/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() }),
        ),
      );
      statuses.push(...answers.map((answer) => answer.status));
    }
    expect(statuses).toEqual(Array.from({ length: FAILED_ATTEMPTS * 3 }, () => 200));
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
    // The platform's egress policy, which the AI router follows: it sets no override of its own.
    expect(config.egress).toEqual({ allow_private: false, allow: [] });
    expect(sectionOf(config, AI_CONFIG_SECTION).egress).toBeUndefined();
    expect(blocks.platform.egress.checkUrl('http://10.0.0.1/v1')).toMatch(/private address/);
    expect(config.auth.password_grant).toBe(false);
    expect(config.rate_limits.enabled).toBe(true);
  });

  it('listens on every interface because the production profile says so; a development start listens on loopback alone', () => {
    expect(blocks.platform.config.http.host).toBe('0.0.0.0');
    expect((blocks.apps.gateway?.server.address() as AddressInfo).address).toBe('0.0.0.0');
    const development = loadConfig({
      configDir: CONFIG_DIR,
      env: { BLOCKS_ENV: 'development', BLOCKS_DATA_DIR: dir.path },
      sections: testRegistry.configSections,
    });
    expect(development.http.host).toBe('127.0.0.1');
    expect(Object.values(development.services).map((service) => service.host)).toEqual([undefined, undefined, undefined]);
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
