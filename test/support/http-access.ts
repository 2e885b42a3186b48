import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createIdentityAuthenticator } from '../../src/core/identity/index.ts';
import { createSystemClock } from '../../src/platform/clock.ts';
import { createAccess, type Access, type AccessDenial, type ContextPolicy } from '../../src/platform/http/access.ts';
import { createMemoryRateLimiter } from '../../src/platform/rate-limit/memory.ts';
import type { RateLimiter } from '../../src/platform/rate-limit/port.ts';
import { createMetrics, type Metrics } from '../../src/platform/telemetry/metrics.ts';
import { createHttpServer, type HttpServer, type HttpServerOptions } from '../../src/platform/http/create-http-server.ts';
import { createLogger } from '../../src/platform/logger.ts';

const ISSUER = 'https://issuer.test.blocks';
const AUDIENCE = 'blocks';

/** The access decision for tests of the HTTP kernel alone: real token verification, no database. */
export interface TestAccess {
  readonly access: Access;
  readonly metrics: Metrics;
  /** Every denial, as the audit trail would receive it. */
  readonly denials: AccessDenial[];
  /** `Authorization` header of an ES256 token for `tenant` with `scopes`, signed by the issuer `access` trusts. */
  readonly bearer: (tenant: string, scopes: readonly string[]) => Promise<Record<string, string>>;
}

/**
 * Builds the production access hooks with the identity authenticator trusting one issuer whose
 * key this helper holds (no API keys: those need the database, and identity's own tests cover them).
 */
export async function testAccess(
  options: {
    limiter?: RateLimiter;
    failedAttempts?: { limit: number; periodMs: number };
    contextPolicy?: ContextPolicy;
    metrics?: Metrics;
  } = {},
): Promise<TestAccess> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test', alg: 'ES256', use: 'sig' };
  const metrics = options.metrics ?? createMetrics();
  const denials: AccessDenial[] = [];
  const access = createAccess({
    authenticator: createIdentityAuthenticator({
      verifyApiKey: async () => null,
      ownIssuer: () => ISSUER,
      audience: AUDIENCE,
      ownKeys: async () => ({ keys: [jwk] }),
      externalIssuers: [],
      clockSkewSec: 30,
    }),
    ...(options.contextPolicy ? { contextPolicy: options.contextPolicy } : {}),
    onDenied: (denial) => denials.push(denial),
    limiter: options.limiter ?? createMemoryRateLimiter(),
    failedAttempts: options.failedAttempts ?? { limit: 1000, periodMs: 60_000 },
    metrics,
    clock: createSystemClock(),
  });
  return {
    access,
    metrics,
    denials,
    bearer: async (tenant, scopes) => ({ authorization: `Bearer ${await sign(privateKey, tenant, scopes)}` }),
  };
}

const sign = (key: CryptoKey, tenant: string, scopes: readonly string[]): Promise<string> =>
  new SignJWT({ tenant, scope: scopes.join(' ') })
    .setProtectedHeader({ alg: 'ES256', kid: 'test', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(`client-${tenant}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);

/**
 * createHttpServer as the kernel's tests build it: quiet, no dependency checks, accepting, metrics
 * and docs anonymous, a 4 KiB body limit. `overrides` replace any of these.
 */
export const testHttpServer = (access: Access, overrides: Partial<HttpServerOptions> = {}): Promise<HttpServer> =>
  createHttpServer({
    name: 'test',
    version: 'test',
    logger: createLogger({ level: 'silent', service: 'test', version: 'test' }),
    metrics: createMetrics(),
    bodyLimitBytes: 4096,
    keepAliveTimeoutMs: 5000,
    checks: [],
    logRequests: false,
    accepting: () => true,
    access,
    anonymous: { metrics: true, docs: true },
    ...overrides,
  });
