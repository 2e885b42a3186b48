import { createHmac } from 'node:crypto';

/** The OAuth client a process of a split deployment authenticates as when it calls another. */
export interface ServiceCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * Derived from the key-encryption key every process of a deployment shares
 * (`auth.key_encryption_key`): the gateway registers the client (identity, on start) and the
 * calling process knows its secret without a secret being handed around. Rotating the key changes
 * both; nothing else can compute them.
 */
export function serviceCredentialsOf(keyEncryptionKey: Uint8Array, service: string): ServiceCredentials {
  const derive = (purpose: string): Buffer =>
    createHmac('sha256', keyEncryptionKey).update(`blocks service ${service} ${purpose}`).digest();
  return {
    clientId: `cl_${derive('client id').toString('hex').slice(0, 24)}`,
    clientSecret: derive('client secret').toString('base64url'),
  };
}

/** The services that call others: one identity each. */
export const CALLING_SERVICES = ['collaborative', 'autonomous'] as const;
