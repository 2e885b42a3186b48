import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { FetchImplementation, JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose';
import { invalidToken, issuerUnavailable } from './token-errors.ts';

/** One issuer whose tokens are accepted, and for which audience. */
export interface TrustedIssuer {
  /** Exactly the `iss` its tokens carry. */
  readonly issuer: string;
  /** The `aud` a token must name (one of them, when several). */
  readonly audience: string | readonly string[];
  /** Where its keys are; give this, `discovery: true`, or `keys`. */
  readonly jwksUri?: string;
  /** Find `jwks_uri` in `<issuer>/.well-known/openid-configuration` (fetched once, then cached). */
  readonly discovery?: boolean;
  /** Keys known in-process (Blocks' own issuer running in the same process): no HTTP at all. */
  readonly keys?: () => Promise<JSONWebKeySet>;
  /** Claim holding the tenant; `tenant` by default. */
  readonly tenantClaim?: string;
}

export interface JwtVerifierOptions {
  readonly issuers: readonly TrustedIssuer[];
  /** Accepted `alg` values. Asymmetric only: `none` and HS* are refused at construction. */
  readonly algorithms?: readonly string[];
  /** Leeway on `exp` and `nbf`, seconds (30 by default). */
  readonly clockSkewSec?: number;
  /** Claims every token must carry besides `iss`, `aud`, `exp` and `sub`. */
  readonly requiredClaims?: readonly string[];
  /** Least time between two JWKS fetches triggered by an unknown `kid` (30 s by default). */
  readonly jwksCooldownMs?: number;
  /** Longest wait for a discovery document or a JWKS (5 s by default). */
  readonly fetchTimeoutMs?: number;
  /** Seconds since the epoch; the system clock by default. */
  readonly now?: () => number;
}

export interface VerifiedToken {
  readonly subject: string;
  readonly issuer: string;
  readonly tenant?: string;
  readonly scopes: readonly string[];
  readonly claims: Readonly<JWTPayload>;
}

export interface JwtVerifier {
  /** Resolves with the token's identity, or throws `INVALID_TOKEN` (401) saying which check failed, or `TOKEN_ISSUER_UNAVAILABLE` (503). */
  verify(token: string): Promise<VerifiedToken>;
}

export const DEFAULT_ALGORITHMS: readonly string[] = ['ES256', 'EdDSA', 'RS256'];
const ASYMMETRIC = /^(?:RS|PS|ES)(?:256|384|512)$|^ES256K$|^EdDSA$|^Ed25519$/;

/**
 * Builds a verifier for tokens from the given issuers. Discovery documents and JWKS are fetched
 * lazily on the first token of an issuer and cached; an unknown `kid` makes jose refetch the
 * JWKS, at most once per cooldown, so a rotation at the issuer is picked up without a restart.
 */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  // A symmetric alg would let anyone holding the (public) verification key mint tokens: the
  // classic HS256-with-the-RSA-public-key confusion. Refuse the configuration outright.
  const unsafe = algorithms.filter((alg) => !ASYMMETRIC.test(alg));
  if (unsafe.length > 0) throw new Error(`JWT algorithms not allowed (asymmetric only): ${unsafe.join(', ')}`);
  if (options.issuers.length === 0) throw new Error('createJwtVerifier needs at least one trusted issuer');
  const clockTolerance = options.clockSkewSec ?? 30;
  const fetchTimeoutMs = options.fetchTimeoutMs ?? 5000;
  const requiredClaims = ['exp', 'sub', ...(options.requiredClaims ?? [])];
  const byIssuer = new Map(options.issuers.map((trusted) => [trusted.issuer, trusted]));
  const keySets = new Map<string, Promise<JWTVerifyGetKey>>();

  const keySetOf = (trusted: TrustedIssuer): Promise<JWTVerifyGetKey> => {
    let keySet = keySets.get(trusted.issuer);
    if (!keySet) {
      keySet = resolveKeySet(trusted, { cooldownMs: options.jwksCooldownMs ?? 30_000, timeoutMs: fetchTimeoutMs });
      // A failed discovery is not cached: the next token tries again.
      keySet.catch(() => keySets.delete(trusted.issuer));
      keySets.set(trusted.issuer, keySet);
    }
    return keySet;
  };

  return {
    async verify(token) {
      const { alg, issuer } = peek(token);
      if (!algorithms.includes(alg)) throw invalidToken(`Algorithm ${alg.slice(0, 20)} is not allowed`);
      const trusted = byIssuer.get(issuer);
      if (!trusted) throw invalidToken('The token issuer is not trusted');
      const keySet = await keySetOf(trusted);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keySet, {
          issuer: trusted.issuer,
          audience: typeof trusted.audience === 'string' ? trusted.audience : [...trusted.audience],
          algorithms,
          clockTolerance,
          requiredClaims,
          ...(options.now ? { currentDate: new Date(options.now() * 1000) } : {}),
        }));
      } catch (error) {
        throw explain(error, trusted.issuer);
      }
      const tenant = payload[trusted.tenantClaim ?? 'tenant'];
      return {
        subject: payload.sub as string,
        issuer: trusted.issuer,
        ...(typeof tenant === 'string' ? { tenant } : {}),
        scopes: scopesOf(payload),
        claims: payload,
      };
    },
  };
}

/** Header `alg` and claim `iss`, read before any check so the right issuer's keys are used. */
function peek(token: string): { alg: string; issuer: string } {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch (error) {
    throw invalidToken('The token is not a well-formed signed JWT', error);
  }
  if (typeof header.alg !== 'string') throw invalidToken('The token header has no algorithm');
  if (typeof claims.iss !== 'string') throw invalidToken('The token has no issuer');
  return { alg: header.alg, issuer: claims.iss };
}

async function resolveKeySet(trusted: TrustedIssuer, fetching: { cooldownMs: number; timeoutMs: number }): Promise<JWTVerifyGetKey> {
  if (trusted.keys) return localKeySet(trusted.keys);
  let jwksUri = trusted.jwksUri;
  if (!jwksUri && trusted.discovery) jwksUri = await discoverJwksUri(trusted.issuer, fetching.timeoutMs);
  if (!jwksUri) throw new Error(`trusted issuer ${trusted.issuer} has neither jwksUri, discovery nor keys`);
  return createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: fetching.cooldownMs,
    timeoutDuration: fetching.timeoutMs,
    [customFetch]: fetchKeySet,
  });
}

/** Largest key set read; a JWKS is a few kilobytes, and a hostile one must not fill the memory. */
const MAX_KEY_SET_BYTES = 512 * 1024;

/** The issuer did not serve its key set: an error status, a redirect, a body that is not JSON or too large. Never the token's fault. */
class KeySetUnavailable extends Error {
  override readonly name = 'KeySetUnavailable';
}

/**
 * jose's fetch of a JWKS, with what goes wrong told apart: jose reports a status other than 200
 * and a body that is not JSON as a generic error, as it does a bad token, where both mean the
 * issuer is failing. The body is read within a bound and handed on as the JSON jose expects.
 */
const fetchKeySet: FetchImplementation = async (url, init) => {
  const response = await fetch(url, init);
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new KeySetUnavailable(`the key set answered HTTP ${response.status}`);
  }
  const text = await readBounded(response, MAX_KEY_SET_BYTES);
  try {
    JSON.parse(text);
  } catch (error) {
    throw new KeySetUnavailable('the key set is not JSON', { cause: error });
  }
  return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
};

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) throw new KeySetUnavailable(`the key set is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** How long local keys are trusted before being re-read, so a retired key leaves without a restart. */
const LOCAL_KEYS_MAX_AGE_MS = 60_000;
/** Least time between two re-reads caused by an unknown `kid` (another replica rotated). */
const LOCAL_KEYS_MISS_COOLDOWN_MS = 1_000;

/**
 * Keys read in-process (from the database), kept in memory: reading them per token would put a
 * query on every request. An unknown `kid` re-reads them at once, at most once per cooldown.
 */
function localKeySet(read: () => Promise<JSONWebKeySet>): JWTVerifyGetKey {
  let cached: { keySet: JWTVerifyGetKey; readAt: number } | undefined;
  let lastMiss = 0;
  const reload = async (): Promise<JWTVerifyGetKey> => {
    cached = { keySet: createLocalJWKSet(await read()), readAt: Date.now() };
    return cached.keySet;
  };
  return async (header, input) => {
    const keySet = cached && Date.now() - cached.readAt < LOCAL_KEYS_MAX_AGE_MS ? cached.keySet : await reload();
    try {
      return await keySet(header, input);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - lastMiss < LOCAL_KEYS_MISS_COOLDOWN_MS) throw error;
      lastMiss = Date.now();
      return (await reload())(header, input);
    }
  };
}

async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  let document: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
      headers: { accept: 'application/json' },
    });
    if (!response.ok) throw new Error(`discovery answered ${response.status}`);
    document = (await response.json()) as typeof document;
  } catch (error) {
    throw issuerUnavailable(issuer, error);
  }
  // OpenID Connect Discovery 1.0 §4.3: the document must name the very issuer it was fetched for.
  if (document.issuer !== issuer || typeof document.jwks_uri !== 'string') {
    throw issuerUnavailable(issuer, new Error('discovery document names another issuer or no jwks_uri'));
  }
  return document.jwks_uri;
}

function explain(error: unknown, issuer: string): Error {
  if (error instanceof errors.JWTExpired) return invalidToken('The token has expired', error);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return invalidToken(`The token lacks the required claim "${error.claim}"`, error);
    switch (error.claim) {
      case 'aud':
        return invalidToken('The token is not meant for this audience', error);
      case 'iss':
        return invalidToken('The token issuer is not trusted', error);
      case 'nbf':
        return invalidToken('The token is not valid yet (nbf)', error);
      case 'iat':
        return invalidToken('The token was issued in the future (iat)', error);
      default:
        return invalidToken(`The token claim "${error.claim}" is invalid`, error);
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalidToken('The token signature is not valid', error);
  if (error instanceof errors.JOSEAlgNotAllowed) return invalidToken('The token algorithm is not allowed', error);
  if (error instanceof errors.JWKSNoMatchingKey) return invalidToken("No key of the issuer matches the token's kid", error);
  if (error instanceof errors.JWKSMultipleMatchingKeys) return invalidToken("Several keys of the issuer match the token's kid", error);
  if (
    error instanceof errors.JWKSTimeout ||
    error instanceof errors.JWKSInvalid ||
    error instanceof KeySetUnavailable ||
    isFetchFailure(error)
  ) {
    return issuerUnavailable(issuer, error);
  }
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return invalidToken('The token is malformed', error);
  if (error instanceof errors.JOSEError) return invalidToken('The token could not be verified', error);
  return issuerUnavailable(issuer, error);
}

const isFetchFailure = (error: unknown): boolean =>
  error instanceof TypeError || (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError'));

function scopesOf(payload: JWTPayload): string[] {
  const { scope, scp } = payload;
  if (typeof scope === 'string') return scope.split(' ').filter(Boolean);
  if (Array.isArray(scp)) return scp.filter((item): item is string => typeof item === 'string');
  if (typeof scp === 'string') return scp.split(' ').filter(Boolean);
  return [];
}
