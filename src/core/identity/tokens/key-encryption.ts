import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Seals private signing keys at rest. */
export interface KeyEncryption {
  /** `version ‖ iv ‖ tag ‖ ciphertext`; `associated` (the kid) is bound in, so a sealed key cannot be moved to another row. */
  seal(plaintext: Uint8Array, associated: string): Uint8Array;
  /** Throws when the data was sealed under another key, for another kid, or altered. */
  open(sealed: Uint8Array, associated: string): Uint8Array;
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM under a 32-byte key-encryption key. */
export function createKeyEncryption(keyEncryptionKey: Uint8Array): KeyEncryption {
  if (keyEncryptionKey.length !== 32) throw new Error('the key-encryption key must be 32 bytes (AES-256)');
  const kek = Buffer.from(keyEncryptionKey);
  return {
    seal(plaintext, associated) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', kek, iv);
      cipher.setAAD(Buffer.from(associated));
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), ciphertext]);
    },
    open(sealed, associated) {
      const bytes = Buffer.from(sealed);
      if (bytes[0] !== VERSION) throw new Error(`sealed signing key has unknown format version ${String(bytes[0])}`);
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      const tag = bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', kek, iv);
      decipher.setAAD(Buffer.from(associated));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    },
  };
}

export interface KeyEncryptionKeySource {
  /** `auth.key_encryption_key` (env `BLOCKS_KEY_ENCRYPTION_KEY`): 32 bytes in base64. */
  readonly configured?: string;
  /** `env` of the configuration. */
  readonly env: string;
  readonly dataDir: string;
}

/**
 * The key-encryption key. Production must configure one (a key lost with the data directory, or
 * sitting next to the data it protects, protects nothing). In development and test a random key is
 * generated once and kept in `<data_dir>/keys/key-encryption.key` (mode 0600), so a new user's
 * `blocks start` works with no setup; that file is the key, so keep it out of backups of the database.
 */
export function resolveKeyEncryptionKey(source: KeyEncryptionKeySource): Uint8Array {
  if (source.configured) {
    const key = Buffer.from(source.configured, 'base64');
    if (key.length !== 32) throw new Error('auth.key_encryption_key must be 32 bytes in base64 (openssl rand -base64 32)');
    return key;
  }
  if (source.env !== 'development' && source.env !== 'test') {
    throw new Error(`auth.key_encryption_key (BLOCKS_KEY_ENCRYPTION_KEY) must be set when env is ${source.env}`);
  }
  const file = join(resolve(source.dataDir), 'keys', 'key-encryption.key');
  try {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(32);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // 'wx': two processes starting on a fresh data dir must not both write a key; the loser rereads.
  try {
    writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return resolveKeyEncryptionKey(source);
  }
  chmodSync(file, 0o600);
  return key;
}
