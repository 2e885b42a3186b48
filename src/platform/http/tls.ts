import { readFileSync } from 'node:fs';
import type { SecureVersion } from 'node:tls';

/** The `tls` section of the configuration. */
export interface TlsConfig {
  /** PEM certificate chain file. */
  readonly cert: string;
  /** PEM private key file. */
  readonly key: string;
  /** Also accept TLS 1.2 clients; TLS 1.3 only when absent or false. */
  readonly allow_tls12?: boolean;
}

/** What node's `https.createServer` takes; handed to fastify's `https` option. */
export interface HttpsServerOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly minVersion: SecureVersion;
}

/**
 * Reads the certificate and key once, at start: a missing or unreadable file stops the start
 * with the config key that names it, instead of a port that silently serves plain HTTP.
 */
export function loadTls(config: TlsConfig | undefined): HttpsServerOptions | undefined {
  if (!config) return undefined;
  return {
    cert: readPem('tls.cert', config.cert),
    key: readPem('tls.key', config.key),
    // TLS 1.3 only unless the operator says otherwise: 1.2 keeps weaker suites and renegotiation around.
    minVersion: config.allow_tls12 ? 'TLSv1.2' : 'TLSv1.3',
  };
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${key}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}
