import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { join } from 'node:path';
import { connect, type TLSSocket, type SecureVersion } from 'node:tls';
import { request as httpsRequest } from 'node:https';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { loadTls } from '../../../src/platform/http/tls.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { selfSignedCertificate } from '../../support/certificates.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

const dir = tempDir('blocks-tls');
const { certFile, keyFile, ca } = selfSignedCertificate(dir.path);

afterAll(() => dir.remove());

async function serve(allowTls12: boolean): Promise<{ app: HttpServer; port: number }> {
  const tls = loadTls({ cert: certFile, key: keyFile, allow_tls12: allowTls12 });
  const { access } = await testAccess();
  const app = await testHttpServer(access, {
    ...(tls ? { tls } : {}),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { app, port: address.port };
}

/** Resolves with the negotiated protocol, or rejects with the handshake error. */
function handshake(port: number, maxVersion: SecureVersion): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', maxVersion }, () => {
      const protocol = socket.getProtocol() ?? 'none';
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

function httpsGet(port: number, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS', () => {
  describe('by default (TLS 1.3 only)', () => {
    let server: { app: HttpServer; port: number };
    beforeAll(async () => {
      server = await serve(false);
    });
    afterAll(() => server.app.close());

    it('completes a TLS 1.3 handshake and answers HTTPS requests with HSTS', async () => {
      expect(await handshake(server.port, 'TLSv1.3')).toBe('TLSv1.3');
      const res = await httpsGet(server.port, '/health/live');
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    });

    it('refuses a client that speaks at most TLS 1.2', async () => {
      await expect(handshake(server.port, 'TLSv1.2')).rejects.toThrow(/protocol version|unsupported protocol/i);
    });

    it('does not answer plain HTTP on the TLS port', async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/health/live`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect(res).not.toBe(200);
    });
  });

  it('accepts TLS 1.2 clients when allow_tls12 is set, and still prefers 1.3', async () => {
    const server = await serve(true);
    try {
      expect(await handshake(server.port, 'TLSv1.2')).toBe('TLSv1.2');
      expect(await handshake(server.port, 'TLSv1.3')).toBe('TLSv1.3');
    } finally {
      await server.app.close();
    }
  });

  it('names the config key of a certificate file it cannot read', () => {
    expect(() => loadTls({ cert: join(dir.path, 'missing.pem'), key: keyFile })).toThrow(/^tls\.cert: cannot read .*missing\.pem/);
    expect(() => loadTls({ cert: certFile, key: join(dir.path, 'nokey.pem') })).toThrow(/^tls\.key: cannot read/);
  });

  // Starts all three roles inside the test (not a hook): on PGlite and a busy machine that alone can pass the default 30 s.
  it('serves every port of blocks start over HTTPS when tls is configured', { timeout: 120_000 }, async () => {
    const blocks = await startTestBlocks({ config: testConfig({}, { tls: { cert: certFile, key: keyFile } }) });
    try {
      for (const url of Object.values(blocks.urls)) {
        expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const port = Number(new URL(url).port);
        expect(await handshake(port, 'TLSv1.3')).toBe('TLSv1.3');
        await expect(handshake(port, 'TLSv1.2')).rejects.toThrow();
        expect((await httpsGet(port, '/health/live')).status).toBe(200);
      }
    } finally {
      await blocks.close();
    }
  });
});
