import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A certificate and key on disk, and the certificate's bytes to trust it with. */
export interface SelfSigned {
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: Buffer;
}

/** A fresh self-signed P-256 certificate for 127.0.0.1 and localhost, written into `dir`: node:crypto cannot issue one. */
export function selfSignedCertificate(dir: string): SelfSigned {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'pipe' },
  );
  return { certFile, keyFile, ca: readFileSync(certFile) };
}
