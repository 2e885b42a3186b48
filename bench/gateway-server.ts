// Serves the targets of bench/gateway.ts in a process of its own, so the load generator does not
// share an event loop with them (see bench/gateway.ts for what is compared and why):
// - `gateway`: Blocks as `blocks start` runs it (startBenchBlocks), every check on;
// - `unchecked`: a twin of the gateway's app in this same process, built by the same
//   createHttpServer with the same options and the same service route plugin, whose access hook
//   hands every request the caller identity verified once at start and which has no rate limits;
// - `authOnly`: the same twin with identity's real access decision, and still no rate limits, to
//   tell the cost of authentication from that of the limiter.
// The first line on stdout names their URLs, the API key and the OAuth client the load uses.
import { createHttpServer, type HttpServer } from '../src/platform/http/create-http-server.ts';
import type { Caller } from '../src/platform/http/caller.ts';
import type { Access } from '../src/platform/http/access.ts';
import { composeService } from '../src/platform/modules/services.ts';
import { serviceSettings } from '../src/start.ts';
import { sectionOf } from '../src/platform/config/section.ts';
import { FIRST_TENANT } from '../src/core/identity/index.ts';
import { compileTransforms, GATEWAY_CONFIG_SECTION, serviceRoutes, transformsPlugin } from '../src/gateway/index.ts';
import type { JSONWebKeySet } from 'jose';
import { createJwtVerifier } from '../src/core/identity/access/jwt-verifier.ts';
import { startBenchBlocks } from './support/bench-blocks.ts';

export interface InjectTarget {
  readonly label: string;
  readonly app: 'gateway' | 'unchecked' | 'authOnly';
  readonly headers: Record<string, string>;
}
export interface InjectOptions {
  readonly path: string;
  /** Calls per target. */
  readonly calls: number;
  /** Calls a target makes before the next one's turn. */
  readonly block: number;
  readonly targets: readonly InjectTarget[];
}
export interface InjectResult {
  readonly label: string;
  readonly p50Us: number;
  readonly p99Us: number;
}
export interface SignatureOptions {
  readonly token: string;
  readonly calls: number;
}
/** What bench/gateway.ts sends over IPC. */
export type BenchRequest = 'cpu' | { readonly inject: InjectOptions } | { readonly signature: SignatureOptions };

/** The one scope GET /api/v1/collaborative (service info) needs. */
const SCOPE = 'service:read';

const bench = await startBenchBlocks({ scopes: [SCOPE] });
const { blocks } = bench;
const { platform, identity } = blocks;
const { config } = platform;

const client = await identity.clients.create(FIRST_TENANT, { name: 'bench load', scopes: [SCOPE] }, { correlationId: 'bench' });
const verified = await identity.verifyApiKey(bench.apiKey);
if (verified === null) throw new Error('the bench API key does not verify');
// Exactly what the access decision sets for a request with this key; the unchecked twin sets it without looking.
const caller: Caller = {
  tenant: verified.tenant,
  kind: 'api_key',
  subject: verified.keyId,
  apiKeyId: verified.keyId,
  clientId: null,
  scopes: verified.scopes,
};
const unchecked: Access = {
  onRequest: async (request) => {
    request.caller = caller;
  },
  onResponse: async () => undefined,
};

// The gateway's own app options (src/start.ts), but for `access` and `rateLimits`.
const twin = async (access: Access): Promise<{ app: HttpServer; url: string }> => {
  const app = await createHttpServer({
    name: 'gateway',
    version: platform.version,
    logger: platform.logger.child({ role: 'gateway' }),
    metrics: platform.metrics,
    bodyLimitBytes: config.http.body_limit_bytes,
    keepAliveTimeoutMs: config.http.keep_alive_timeout,
    checks: platform.checks,
    logRequests: config.http.log_requests,
    accepting: () => true,
    access,
    anonymous: config.auth.anonymous,
    cors: config.http.cors,
    jsonMaxDepth: config.http.json_max_depth,
    trustedProxies: config.http.trusted_proxies,
  });
  // As the gateway mounts an in-process service: its transforms first, then the module's routes.
  await app.register(transformsPlugin, { transforms: compileTransforms(sectionOf(config, GATEWAY_CONFIG_SECTION).transforms) });
  await app.register(
    serviceRoutes(
      composeService({
        name: 'collaborative',
        registry: blocks.registry,
        modules: blocks.modules,
        version: platform.version,
        settings: serviceSettings(config, 'collaborative'),
      }),
    ),
  );
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: address };
};
const off = await twin(unchecked);
const authOnly = await twin(identity.access);

process.stdout.write(
  `${JSON.stringify({
    gateway: blocks.urls.gateway,
    unchecked: off.url,
    authOnly: authOnly.url,
    apiKey: bench.apiKey,
    clientId: client.client_id,
    clientSecret: client.client_secret,
    scope: SCOPE,
    limiter: platform.rateLimiter.kind,
  })}\n`,
);

const apps: Record<InjectTarget['app'], HttpServer> = {
  gateway: blocks.apps.gateway as HttpServer,
  unchecked: off.app,
  authOnly: authOnly.app,
};

// bench/gateway.ts asks, over IPC, for this process's CPU time (every thread) around each round,
// and first for the in-process figures: requests made one at a time with fastify's inject (no
// socket, no load generator), so what differs between targets is the work of the checks alone.
process.on('message', (message: BenchRequest) => {
  if (message === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuUs: user + system });
    return;
  }
  const answer = 'inject' in message ? injectBench(message.inject).then((inject) => ({ inject })) : signatureBench(message.signature);
  answer.then(
    (result) => process.send?.(result),
    (error: unknown) => process.send?.({ error: String(error) }),
  );
});

/**
 * What a token's first request adds: its signature and claims checked by the verifier the gateway
 * uses (createJwtVerifier, keys in memory), which then remembers the token until it expires.
 */
async function signatureBench(options: SignatureOptions): Promise<{ signature: Omit<InjectResult, 'label'> }> {
  const jwks = (await (await fetch(`${blocks.urls.gateway}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const verifier = createJwtVerifier({
    issuers: [{ issuer: blocks.urls.gateway as string, audience: config.auth.audience, keys: async () => jwks }],
    clockSkewSec: Math.round(config.auth.clock_skew / 1000),
  });
  const micros = new Float64Array(options.calls);
  for (let i = 0; i < options.calls; i++) {
    const started = process.hrtime.bigint();
    await verifier.verify(options.token);
    micros[i] = Number(process.hrtime.bigint() - started) / 1000;
  }
  return { signature: percentiles(micros) };
}

function percentiles(micros: Float64Array): { p50Us: number; p99Us: number } {
  micros.sort();
  const at = (p: number): number => micros[Math.min(micros.length - 1, Math.floor(micros.length * p))] as number;
  return { p50Us: at(0.5), p99Us: at(0.99) };
}

/**
 * Targets take turns in blocks of `block` calls, so whatever else the machine does at a moment
 * slows every target alike; latency percentiles and CPU time are over all of a target's calls.
 */
async function injectBench(options: InjectOptions): Promise<InjectResult[]> {
  const figures = options.targets.map(() => new Float64Array(options.calls));
  for (let done = 0; done < options.calls; done += options.block) {
    const calls = Math.min(options.block, options.calls - done);
    for (const [t, target] of options.targets.entries()) {
      const app = apps[target.app];
      const micros = figures[t] as Float64Array;
      for (let i = done; i < done + calls; i++) {
        const started = process.hrtime.bigint();
        const response = await app.inject({ method: 'GET', url: options.path, headers: target.headers });
        micros[i] = Number(process.hrtime.bigint() - started) / 1000;
        if (response.statusCode !== 200) throw new Error(`${target.label}: GET ${options.path} answered ${response.statusCode}`);
      }
    }
  }
  return options.targets.map(({ label }, t) => ({ label, ...percentiles(figures[t] as Float64Array) }));
}

const stop = async (): Promise<void> => {
  await Promise.allSettled([off.app.close(), authOnly.app.close()]);
  await bench.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
