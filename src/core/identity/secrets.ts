import { argon2, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** `bk_` + base64url of 32 random bytes: 256 bits that cannot be guessed, whatever hash stores them. */
export const newApiKey = (): string => `bk_${randomBytes(32).toString('base64url')}`;

/** `bks_` + base64url of 32 random bytes. */
export const newClientSecret = (): string => `bks_${randomBytes(32).toString('base64url')}`;

/** What is shown to humans to tell keys apart: enough to recognise, far too little to use. */
export const prefixOf = (key: string): string => key.slice(0, 11);

/** The stored form of an API key (see src/core/identity/migrations/0007_identity.sql for why SHA-256 suffices). */
export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key).digest();

// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~50 ms here, enough to make guessing costly.
const ARGON2 = { memory: 19_456, passes: 2, parallelism: 1, tagLength: 32 } as const;

const phcBase64 = (bytes: Buffer): string => bytes.toString('base64').replace(/=+$/, '');

const derive = (password: string, nonce: Buffer, params: { memory: number; passes: number; parallelism: number; tagLength: number }) =>
  new Promise<Buffer>((resolve, reject) => {
    // The asynchronous form runs on the thread pool: a login never stalls every other request for 50 ms.
    argon2('argon2id', { message: password, nonce, ...params }, (error, derived) => (error ? reject(error) : resolve(derived)));
  });

/** An argon2id hash in PHC string form (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), for passwords and client secrets. */
export async function hashPassword(password: string): Promise<string> {
  const nonce = randomBytes(16);
  const derived = await derive(password, nonce, ARGON2);
  return `$argon2id$v=19$m=${ARGON2.memory},t=${ARGON2.passes},p=${ARGON2.parallelism}$${phcBase64(nonce)}$${phcBase64(derived)}`;
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/**
 * Whether `password` matches a {@link hashPassword} string, compared in constant time. A hash that
 * is not argon2id in PHC form never matches. Reads the parameters from the hash, so hashes made
 * with older costs keep verifying after the costs are raised.
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const match = PHC.exec(hash);
  if (!match) return false;
  const [, memory, passes, parallelism, salt, expected] = match as unknown as [string, string, string, string, string, string];
  const want = Buffer.from(expected, 'base64');
  const got = await derive(password, Buffer.from(salt, 'base64'), {
    memory: Number(memory),
    passes: Number(passes),
    parallelism: Number(parallelism),
    tagLength: want.length,
  });
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * A hash of a secret nobody knows, verified against when the client or user does not exist, so
 * that a miss costs as long as a wrong secret and timing does not reveal which ids exist.
 */
export const createDecoyHash = (): Promise<string> => hashPassword(randomBytes(32).toString('base64url'));
