import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookup } from 'node:dns/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { stringify as toYaml } from 'yaml';
import { MAX_BODY_BYTES } from '../../src/autonomous/ai-router/providers/http.ts';
import { classifyAddress } from '../../src/platform/net/egress.ts';
import type { RunningBlocks } from '../../src/start.ts';
import { captureLogs, eventually, startTestBlocks, tempDir, testConfig, type CapturedLogs } from '../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../support/credentials.ts';
import { catalogModel } from '../support/catalog-model.ts';
import { startFakeOpenAi, type FakeProvider } from '../support/fake-providers/index.ts';
import { sendText, startHostileProvider, type HostileAnswer, type HostileProvider } from '../support/hostile-provider.ts';
import { AI_CONFIG_SECTION } from '../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../src/platform/config/section.ts';
import { withMigratedPglite } from '../support/templates.ts';

// The OWASP items about what Blocks fetches and consumes: API7 (SSRF through URLs a caller sets),
// API10 (unsafe consumption of a provider's answers and of an identity provider's documents) and
// API6 (a budget as the limit on the costly flow). Providers here are real HTTP servers on 127.0.0.1
// named in `ai.providers`, which the operator configures and the egress policy therefore trusts.

const dir = tempDir('blocks-owasp-third-party');
/** The one private address `ai.egress.allow` lets deployments reach. */
const ALLOWED = '127.0.0.2';
/**
 * A name this machine resolves to an address that is not public (a container's host name does:
 * /etc/hosts), so that only resolution at connect time can tell; none when it resolves to a public one.
 */
const INSIDE_NAME = await lookup(hostname(), { all: true }).then(
  (addresses) => (addresses.length > 0 && addresses.every(({ address }) => classifyAddress(address) !== 'public') ? hostname() : undefined),
  () => undefined,
);
let blocks: RunningBlocks;
let creds: TestCredentials;
let fake: FakeProvider;
/** The `shady` model's provider: answers whatever a test makes it. */
let hostile: HostileProvider;
/** Where a redirect points, and where an issuer's keys live: counts what reaches it. */
let elsewhere: HostileProvider;
/** The external identity providers' discovery documents, by path. */
let idp: HostileProvider;
let idpKey: CryptoKey;
/** The operator's key of provider `keyed` (`ai.providers.keyed.credentials_ref: env:OWASP_OPERATOR_API_KEY`). */
const OPERATOR_KEY = 'sk-operator-owasp-3f9a1c';
let logs: CapturedLogs;

const model = (id: string, provider: string) => catalogModel(id, { provider });

beforeAll(async () => {
  fake = await startFakeOpenAi({ kind: 'answer' });
  hostile = await startHostileProvider();
  const pair = await generateKeyPair('ES256', { extractable: true });
  idpKey = pair.privateKey;
  const keys = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] });
  elsewhere = await startHostileProvider(sendText(keys));
  idp = await startHostileProvider((request, response) => {
    const issuer = `${idp.origin}${(request.url ?? '').replace('/.well-known/openid-configuration', '')}`;
    const json = (document: unknown): void =>
      void response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
    switch (request.url) {
      case '/elsewhere/.well-known/openid-configuration':
        return json({ issuer, jwks_uri: `${elsewhere.origin}/keys` });
      case '/liar/.well-known/openid-configuration':
        return json({ issuer: 'https://someone-else.example', jwks_uri: `${elsewhere.origin}/keys` });
      case '/redirect/.well-known/openid-configuration':
        return void response.writeHead(302, { location: `${idp.origin}/elsewhere/.well-known/openid-configuration` }).end();
      case '/garbage/.well-known/openid-configuration':
        return void response.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json');
      case '/junk-keys/.well-known/openid-configuration':
        return json({ issuer, jwks_uri: `${idp.origin}/junk` });
      case '/html-keys/.well-known/openid-configuration':
        return json({ issuer, jwks_uri: `${idp.origin}/html` });
      case '/failing-keys/.well-known/openid-configuration':
        return json({ issuer, jwks_uri: `${idp.origin}/failing` });
      case '/failing':
        return void response.writeHead(500, { 'content-type': 'application/json' }).end('{"keys":[]}');
      case '/junk':
        return json({ keys: 'none' });
      default:
        return void response.writeHead(200, { 'content-type': 'text/html' }).end('<html>a login page</html>');
    }
  });
  const catalogFile = join(dir.path, 'models.yaml');
  // `guarded` is served by the hostile provider first (its weight) and by the fake when that one fails.
  const guarded = {
    ...model('guarded', 'hostile'),
    deployments: [
      { id: 'bad-key', provider: 'hostile', weight: 1000 },
      { id: 'good', provider: 'fake', weight: 0.001 },
    ],
  };
  writeFileSync(catalogFile, toYaml({ models: [model('steady', 'fake'), model('shady', 'hostile'), guarded] }));
  // The operator's provider key, read by `env:` reference from the process environment (Blocks runs in this process).
  process.env['OWASP_OPERATOR_API_KEY'] = OPERATOR_KEY;
  logs = captureLogs('warn');
  const issuers = ['elsewhere', 'liar', 'redirect', 'garbage', 'junk-keys', 'html-keys', 'failing-keys'].map((name) => ({
    issuer: `${idp.origin}/${name}`,
    audience: 'blocks',
  }));
  blocks = await startTestBlocks({
    config: testConfig(
      { BLOCKS_DATA_DIR: withMigratedPglite(join(dir.path, 'data')) },
      {
        // Every hostile answer is a failure of `shady`: its breakers must not open and hide the next one.
        resilience: { failure_threshold: 1_000_000, recovery_timeout: 1000 },
        auth: { external_issuers: issuers },
        ai: {
          catalog_file: catalogFile,
          providers: {
            fake: { protocol: 'openai', base_url: fake.baseUrl },
            hostile: { protocol: 'openai', base_url: `${hostile.origin}/v1` },
            keyed: { protocol: 'openai', base_url: fake.baseUrl, credentials_ref: 'env:OWASP_OPERATOR_API_KEY' },
          },
          routing: { exploration: 0 },
          // Two attempts: a deployment that fails (a refused key, a refused address) hands over to the model's next one.
          proxy: { attempt_timeout: 5000, request_timeout: 10_000, max_attempts: 2 },
          // What the SSRF tests rely on, said here rather than inherited: public addresses only, and one the operator allowed.
          egress: { allow_private: false, allow: [ALLOWED] },
        },
      },
    ),
    roles: ['gateway', 'autonomous'],
    logger: logs.logger,
  });
  creds = testCredentials(blocks);
}, 60_000);

afterAll(async () => {
  await blocks?.close();
  await Promise.all([fake, hostile, elsewhere, idp].map((server) => server?.close()));
  dir.remove();
});

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const response = await fetch(`${blocks.urls.gateway as string}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

const chat = async (modelId: string, tenant = 'third-party', extra: Record<string, unknown> = {}) =>
  call('POST', '/v1/chat/completions', await creds.headers(tenant), {
    model: modelId,
    messages: [{ role: 'user', content: 'hello there' }],
    ...extra,
  });

describe('API1 broken object level authorization: what the router learns is per tenant', () => {
  // Two models for one task: `bola-cheap` (served by the hostile provider, so a test can make its calls fail)
  // and `bola-dear`, the same quality at 7× the price. Nothing learned, every tenant picks the cheap one.
  const TASK = 'bola-steering';
  const spec = (id: string, provider: string, price: number) => ({
    ...model(id, provider),
    task_types: [TASK],
    input_price_per_mtok: price,
    output_price_per_mtok: 2 * price,
    quality: { [TASK]: { low: 0.9, medium: 0.9, high: 0.9 } },
  });
  const operator = () => creds.headers('third-party-operator');
  beforeAll(async () => {
    for (const body of [spec('bola-cheap', 'hostile', 1), spec('bola-dear', 'fake', 7)]) {
      const created = await call('POST', '/api/v1/autonomous/ai/models', await operator(), body);
      expect(created.status, created.text).toBe(201);
    }
  });
  afterAll(async () => {
    for (const id of ['bola-cheap', 'bola-dear']) await call('DELETE', `/api/v1/autonomous/ai/models/${id}`, await operator());
  });

  const route = async (tenant: string, extra: Record<string, unknown> = {}) => {
    const answer = await call('POST', '/api/v1/autonomous/ai/route', await creds.headers(tenant), {
      task_type: TASK,
      complexity: 'medium',
      ...extra,
    });
    expect(answer.status, answer.text).toBe(200);
    return answer.body as { decision_id: string; selected_model: string; confidence: number };
  };
  const failedFeedback = async (tenant: string, preferred: string) => {
    const decision = await route(tenant, { preferred_model: preferred });
    const answer = await call('POST', '/api/v1/autonomous/ai/feedback', await creds.headers(tenant), {
      decision_id: decision.decision_id,
      success: false,
    });
    expect(answer.status, answer.text).toBe(201);
  };
  interface Learned {
    model: string;
    observations: number;
    outcome_observations: number;
    call_observations: number;
    quality: number;
  }
  const learned = async (tenant: string): Promise<Learned[]> =>
    (
      (await call('GET', `/api/v1/autonomous/ai/stats?task_type=${TASK}`, await creds.headers(tenant))).body['estimates'] as Array<
        Learned & { complexity: string }
      >
    ).filter((row) => row.complexity === 'medium');
  const of = (rows: Learned[], id: string): Learned => rows.find((row) => row.model === id) as Learned;
  const call5 = async (id: string, tenant: string, status: number) => {
    for (let i = 0; i < 5; i++) {
      const answer = await chat(id, tenant, { blocks: { task_type: TASK, complexity: 'medium' } });
      expect(answer.status, answer.text).toBe(status);
    }
  };

  it("B's failed calls and failure feedback do not move A's choice or show in A's /ai/stats, and A's do not move B's", async () => {
    const [a, b] = ['bola-learn-a', 'bola-learn-b'];
    expect(await route(a)).toMatchObject({ selected_model: 'bola-cheap', confidence: 0.9 });
    expect(await route(b)).toMatchObject({ selected_model: 'bola-cheap', confidence: 0.9 });

    // B: five calls of the cheap model that fail at its provider, five failure feedbacks on it.
    hostile.answer(sendText('{"error":{"message":"overloaded"}}', 500));
    await call5('bola-cheap', b, 502);
    for (let i = 0; i < 5; i++) await failedFeedback(b, 'bola-cheap');
    const byB = await eventually(
      async () => of(await learned(b), 'bola-cheap'),
      (row) => row.outcome_observations > 4.9 && row.call_observations > 4.9,
    );
    expect(byB.quality).toBeLessThan(0.8);
    const steered = await route(b);
    expect(steered.selected_model).toBe('bola-dear');

    // A still routes on the catalog's figures, and its /ai/stats shows nothing of B's calls or feedback.
    expect(await route(a)).toMatchObject({ selected_model: 'bola-cheap', confidence: 0.9 });
    expect((await learned(a)).map((row) => [row.model, row.observations])).toEqual([
      ['bola-cheap', 0],
      ['bola-dear', 0],
    ]);

    // The other way round: A's calls of the dear model and failure feedback on it leave B's figures and choice alone.
    const bDear = of(await learned(b), 'bola-dear');
    await call5('bola-dear', a, 200);
    for (let i = 0; i < 5; i++) await failedFeedback(a, 'bola-dear');
    await eventually(
      async () => of(await learned(a), 'bola-dear'),
      (row) => row.outcome_observations > 4.9 && row.call_observations > 4.9,
    );
    const bDearAfter = of(await learned(b), 'bola-dear');
    expect(bDearAfter.call_observations).toBeLessThanOrEqual(bDear.call_observations);
    expect(bDearAfter.outcome_observations).toBeLessThanOrEqual(bDear.outcome_observations);
    expect(await route(b)).toMatchObject({ selected_model: 'bola-dear', confidence: steered.confidence });
  });
});

describe('API7 server-side request forgery: deployment base URLs a caller sets', () => {
  const body = (baseUrl: string) => ({
    ...model('ssrf-probe', 'fake'),
    deployments: [{ id: 'mine', base_url: baseUrl }],
  });

  it('refuses, when written, every URL pointing inside: 400 naming the field, nothing stored', async () => {
    expect(sectionOf(blocks.platform.config, AI_CONFIG_SECTION).egress).toEqual({ allow_private: false, allow: [ALLOWED] });
    const admin = await creds.headers('ssrf');
    for (const url of [
      'http://127.0.0.1:8001/v1',
      'http://2130706433/v1',
      'http://0x7f.0.0.1/v1',
      'http://localhost:8001/v1',
      'http://[::1]:8001/v1',
      'http://[::ffff:127.0.0.1]/v1',
      'http://169.254.169.254/latest/meta-data/iam/',
      'http://[fe80::1]/v1',
      'http://10.0.0.8/v1',
      'http://172.16.5.4/v1',
      'http://192.168.1.1/v1',
      'http://[fd00::8]/v1',
      'http://0.0.0.0:8001/v1',
      'https://user:password@api.example.com/v1',
      'file:///etc/passwd',
      'gopher://127.0.0.1:6379/_FLUSHALL',
    ]) {
      const answer = await call('POST', '/api/v1/autonomous/ai/models', admin, body(url));
      expect(answer.status, url).toBe(400);
      expect(answer.body['code'], url).toBe('INVALID_MODEL');
      expect(answer.body['field'], url).toBe('deployments[0].base_url');
    }
    expect((await call('GET', '/api/v1/autonomous/ai/models/ssrf-probe', admin)).status).toBe(404);
  });

  it('refuses the same when a model is replaced, and leaves the model as it was', async () => {
    const admin = await creds.headers('ssrf');
    const created = await call('POST', '/api/v1/autonomous/ai/models', admin, body('https://llm.example.com/v1'));
    expect(created.status).toBe(201);
    const { model: _m, ...replacement } = body('http://169.254.169.254/v1');
    const replaced = await call('PUT', '/api/v1/autonomous/ai/models/ssrf-probe', admin, replacement);
    expect(replaced.status).toBe(400);
    expect(replaced.body['field']).toBe('deployments[0].base_url');
    const stored = await call('GET', '/api/v1/autonomous/ai/models/ssrf-probe', admin);
    expect((stored.body['deployments'] as Array<{ base_url: string }>)[0]?.base_url).toBe('https://llm.example.com/v1');
    await call('DELETE', '/api/v1/autonomous/ai/models/ssrf-probe', admin);
  });

  it("leaves the operator's own endpoints (ai.providers, here on 127.0.0.1) alone", async () => {
    const answer = await chat('steady');
    expect(answer.status).toBe(200);
    expect(fake.requests.length).toBeGreaterThan(0);
  });
});

describe('API7 server-side request forgery: checked again when connecting, after DNS resolution', () => {
  let inside: Server;
  let insidePort: number;
  let reached = 0;
  beforeAll(async () => {
    // A provider listening where only the operator's allow list lets a deployment go.
    inside = createServer((_req, res) => {
      reached += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"message":{"role":"assistant","content":"inside"}}]}');
    });
    await new Promise<void>((resolve) => inside.listen(0, ALLOWED, resolve));
    insidePort = (inside.address() as AddressInfo).port;
  });
  afterAll(async () => {
    inside.closeAllConnections();
    await new Promise((resolve) => inside.close(resolve));
  });

  const deployed = async (id: string, baseUrl: string) => {
    const created = await call('POST', '/api/v1/autonomous/ai/models', await creds.headers('ssrf'), {
      ...model(id, 'fake'),
      deployments: [{ id: 'custom', base_url: baseUrl }],
    });
    expect(created.status, created.text).toBe(201);
  };

  it.skipIf(INSIDE_NAME === undefined)(
    `refuses a name that passed when written but resolves inside when called: 502 PROVIDER_EGRESS_REFUSED, nothing sent (skipped: ${hostname()} resolves to a public address here)`,
    async () => {
      const before = reached;
      await deployed('ssrf-rebound', `http://${INSIDE_NAME as string}:${insidePort}/v1`);
      const answer = await chat('ssrf-rebound');
      expect(answer.status).toBe(502);
      expect(answer.body['code']).toBe('PROVIDER_EGRESS_REFUSED');
      expect(answer.text).not.toMatch(/127\.0\.0\.|inside/);
      expect(reached).toBe(before);
    },
  );

  it.skipIf(INSIDE_NAME === undefined)(
    `charges a refused address to its deployment alone, so the model's other deployment keeps serving (skipped: ${hostname()} resolves to a public address here)`,
    async () => {
      const admin = await creds.headers('ssrf');
      const created = await call('POST', '/api/v1/autonomous/ai/models', admin, {
        ...model('ssrf-split', 'fake'),
        deployments: [
          { id: 'rebound', base_url: `http://${INSIDE_NAME as string}:${insidePort}/v1`, weight: 1000 },
          { id: 'allowed', base_url: `http://${ALLOWED}:${insidePort}/v1`, weight: 0.001 },
        ],
      });
      expect(created.status, created.text).toBe(201);
      await deployed('ssrf-rebound-only', `http://${INSIDE_NAME as string}:${insidePort}/v1`);
      const breakers = () => new Map(blocks.platform.breakers.states().map((b) => [b.name, b.failures]));
      const before = breakers();
      for (let i = 0; i < 3; i++) {
        const served = await chat('ssrf-split');
        expect(served.status).toBe(200);
        const refused = await chat('ssrf-rebound-only');
        expect(refused.body['code']).toBe('PROVIDER_EGRESS_REFUSED');
      }
      const after = breakers();
      const grew = (name: string): number => (after.get(name) ?? 0) - (before.get(name) ?? 0);
      expect(grew('ai.deployment.ssrf-rebound-only/custom')).toBe(3);
      // Three refusals in a row counted nowhere but on the deployment: not the model, not the provider every `fake` model shares.
      expect(after.get('ai.model.ssrf-rebound-only') ?? 0).toBe(0);
      expect(after.get('ai.model.ssrf-split') ?? 0).toBe(0);
      expect(after.get('ai.provider.fake') ?? 0).toBe(0);
    },
  );

  it('reaches a private address the operator allowed in ai.egress.allow', async () => {
    await deployed('ssrf-allowed', `http://${ALLOWED}:${insidePort}/v1`);
    const answer = await chat('ssrf-allowed');
    expect(answer.status).toBe(200);
    expect(reached).toBeGreaterThan(0);
  });
});

// API8 rather than API3: a catalog writer may set `credentials_ref` and `base_url` (that is the
// scope's job); what was missing is hardening of what a reference may resolve to and a safe
// default for a deployment moved to another host. The fix is configuration (`secrets`) with safe defaults.
describe('API8 security misconfiguration: secret references a catalog writer sets', () => {
  /** A host the catalog writer controls (on the one private address `ai.egress.allow` lets deployments reach). */
  let catcher: Server;
  let catcherUrl: string;
  /** The `authorization` header of every request the catcher received. */
  const received: string[] = [];
  beforeAll(async () => {
    const answer = JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'caught' }, finish_reason: 'stop' }],
    });
    catcher = createServer((req, res) => {
      received.push(req.headers.authorization ?? '');
      req.resume().on('end', () => void res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
    });
    await new Promise<void>((resolve) => catcher.listen(0, ALLOWED, resolve));
    catcherUrl = `http://${ALLOWED}:${(catcher.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    catcher.closeAllConnections();
    await new Promise((resolve) => catcher.close(resolve));
  });

  const keyFile = () => join(blocks.platform.config.data_dir, 'keys', 'key-encryption.key');
  /** Writes a model whose one deployment points at the catcher, then calls it; returns the write's answer. */
  const attempt = async (id: string, deployment: Record<string, unknown>, provider = 'fake') => {
    const admin = await creds.headers('catalog-writer');
    const written = await call('POST', '/api/v1/autonomous/ai/models', admin, {
      ...model(id, provider),
      deployments: [{ id: 'theirs', base_url: catcherUrl, ...deployment }],
    });
    if (written.status === 201) await chat(id);
    return written;
  };

  it("refuses a reference to Blocks' own key file: 400 naming the field, nothing stored, nothing sent", async () => {
    const secret = readFileSync(keyFile(), 'utf8').trim();
    expect(secret.length).toBeGreaterThan(20);
    for (const [i, ref] of [`file:${keyFile()}`, `file:/run/secrets/../..${keyFile()}`, 'file:keys/key-encryption.key'].entries()) {
      const written = await attempt(`exfil-file-${i}`, { credentials_ref: ref });
      expect(received.join('\n'), ref).not.toContain(secret);
      expect(written.status, ref).toBe(400);
      expect(written.body['code'], ref).toBe('INVALID_MODEL');
      expect(written.body['field'], ref).toBe('deployments[0].credentials_ref');
      expect(written.text, ref).not.toContain(secret);
      expect((await call('GET', `/api/v1/autonomous/ai/models/exfil-file-${i}`, await creds.headers('catalog-writer'))).status).toBe(404);
    }
  });

  it('refuses a reference to an environment variable outside the bounds (env:PATH): 400 naming the field, nothing sent', async () => {
    const secret = process.env['PATH'] as string;
    for (const [field, deployment, extra] of [
      ['deployments[0].credentials_ref', { credentials_ref: 'env:PATH' }, {}],
      ['credentials_ref', {}, { credentials_ref: 'env:PATH' }],
    ] as const) {
      const admin = await creds.headers('catalog-writer');
      const written = await call('POST', '/api/v1/autonomous/ai/models', admin, {
        ...model('exfil-env', 'fake'),
        ...extra,
        deployments: [{ id: 'theirs', base_url: catcherUrl, ...deployment }],
      });
      if (written.status === 201) await chat('exfil-env');
      expect(received.join('\n'), field).not.toContain(secret);
      expect(written.status, field).toBe(400);
      expect(written.body['field'], field).toBe(field);
    }
  });

  it("never sends the provider's key to a deployment with a base_url of its own and no reference", async () => {
    const written = await attempt('exfil-inherit', {}, 'keyed');
    expect(received.join('\n')).not.toContain(OPERATOR_KEY);
    expect(written.status).toBe(201);
    // The deployment was called, without a key: a keyless endpoint still works.
    expect(received.at(-1)).toBe('');
    // The operator's own endpoint still gets the operator's key.
    const admin = await creds.headers('catalog-writer');
    expect((await call('POST', '/api/v1/autonomous/ai/models', admin, model('keyed-own', 'keyed'))).status).toBe(201);
    expect((await chat('keyed-own')).status).toBe(200);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${OPERATOR_KEY}`);
  });

  it('refuses a stored reference outside the bounds when it is read: the call fails cleanly, the reason is logged, nothing is sent', async () => {
    // Written before the bounds existed (or bounds narrowed since): straight into the table.
    const deployments = JSON.stringify([{ id: 'theirs', base_url: catcherUrl, credentials_ref: 'env:PATH' }]);
    await blocks.platform.db.query(
      `INSERT INTO ai_models (model, provider, task_types, context_window, input_price_per_mtok, output_price_per_mtok, quality, deployments)
       VALUES ('stored-exfil', 'fake', '{chat}', 1000, 1, 1, '{"chat":{"low":0.9,"medium":0.9,"high":0.9}}', $1)`,
      [deployments],
    );
    // Any change through the API reloads the catalog from the table.
    const admin = await creds.headers('catalog-writer');
    expect((await call('POST', '/api/v1/autonomous/ai/models', admin, model('reload-trigger', 'fake'))).status).toBe(201);
    const before = received.length;
    const answer = await chat('stored-exfil');
    expect(received.slice(before).join('\n')).not.toContain(process.env['PATH'] as string);
    expect(received.length).toBe(before);
    // Skipped as any deployment whose key cannot be read (proxy/attempts.ts): with no other, 503 naming why, not the reference.
    expect(answer.status).toBe(503);
    expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(answer.body['code']).toBe('MODEL_UNAVAILABLE');
    expect(answer.body['detail']).toMatch(/stored-exfil\/theirs \(no usable key: SECRET_REF_NOT_ALLOWED\)/);
    expect(answer.text).not.toContain('env:PATH');
    expect(answer.text).not.toContain(process.env['PATH'] as string);
    // The operator reads the reference and why in the log.
    expect(logs.lines).toContainEqual(
      expect.objectContaining({
        msg: 'AI deployment credentials refused',
        model: 'stored-exfil',
        deployment: 'theirs',
        code: 'SECRET_REF_NOT_ALLOWED',
        detail: expect.stringMatching(/^'env:PATH' is not a variable secrets.env allows/) as unknown,
      }),
    );
    expect(JSON.stringify(logs.lines)).not.toContain(process.env['PATH'] as string);
  });
});

describe('API10 unsafe consumption: a provider gone bad', () => {
  const shady = async (answer: HostileAnswer, extra: Record<string, unknown> = {}) => {
    hostile.answer(answer);
    return chat('shady', 'third-party', extra);
  };
  const completion = (fields: Record<string, unknown> = {}, message: Record<string, unknown> = {}) =>
    JSON.stringify({
      id: 'x',
      object: 'chat.completion',
      created: 1,
      model: 'shady',
      choices: [{ index: 0, message: { role: 'assistant', content: 'fine', ...message }, finish_reason: 'stop' }],
      ...fields,
    });

  it('answers a clean 502 for a redirect (not followed), a body that is not JSON, too large, too deep or of the wrong shape', async () => {
    const redirected = elsewhere.hits;
    const cases: Array<[string, HostileAnswer, RegExp]> = [
      ['redirect', (_req, res) => void res.writeHead(307, { location: `${elsewhere.origin}/v1/chat/completions` }).end(), /redirect/],
      ['not JSON', sendText('<html><body>Welcome to nginx</body></html>'), /not JSON/],
      ['too large', sendText(`{"choices":[{"message":{"content":"${'A'.repeat(MAX_BODY_BYTES)}"}}]}`), /larger than/],
      ['too deep', sendText(`{"choices":[{"message":{"content":"x"}}],"d":${'['.repeat(50_000)}${']'.repeat(50_000)}}`), /nested deeper/],
      ['content not text', sendText(completion({}, { content: { script: '<script>alert(1)</script>' } })), /not text/],
      ['no choices', sendText('{"id":"x","object":"chat.completion"}'), /without choices/],
    ];
    for (const [what, answer, detail] of cases) {
      const response = await shady(answer);
      expect(response.status, what).toBe(502);
      expect(response.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
      expect(response.body['code'], what).toBe('PROVIDER_BAD_RESPONSE');
      expect(response.body['detail'], what).toMatch(detail);
      expect(response.text.length, what).toBeLessThan(10_000);
      expect(response.text, what).not.toMatch(/<script>|Welcome to nginx|AAAAAAAAAA/);
    }
    expect(elsewhere.hits).toBe(redirected);
    expect((await call('GET', '/health/live', {})).status).toBe(200);
  });

  it('passes on only the canonical fields of an answer, and never a prototype', async () => {
    const body = completion(
      {
        usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
        injected: '<img src=x onerror=alert(1)>',
        system: { debug: 'internal' },
      },
      { content: 'fine', tool_calls: null, audio: { data: 'AAAA' }, leaked: 'provider-internal' },
    ).replace('{"id"', '{"__proto__":{"isAdmin":true},"id"');
    const answer = await shady(sendText(body));
    expect(answer.status).toBe(200);
    expect(answer.text).not.toMatch(/injected|onerror|debug|leaked|provider-internal|isAdmin|audio/);
    expect((answer.body['choices'] as Array<{ message: unknown }>)[0]?.message).toEqual({ role: 'assistant', content: 'fine' });
  });

  it('ends a stream whose provider sends one endless event with a clean 502', async () => {
    const answer = await shady(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const piece = 'z'.repeat(64 * 1024);
        res.write('data: {"choices":[{"delta":{"content":"');
        for (let i = 0; i < 40; i++) res.write(piece);
        res.end();
      },
      { stream: true },
    );
    expect(answer.status).toBe(502);
    expect(answer.body['code']).toBe('PROVIDER_BAD_RESPONSE');
    expect(answer.text.length).toBeLessThan(10_000);
  });

  it('does not let a provider lower what a call costs: bad token counts are replaced by its own count', async () => {
    const tenant = 'third-party-usage';
    hostile.answer(sendText(completion({ usage: { prompt_tokens: -5_000_000, completion_tokens: -1, total_tokens: -5_000_001 } })));
    expect((await chat('shady', tenant)).status).toBe(200);
    const usage = await eventually(
      async () => (await call('GET', '/api/v1/autonomous/ai/usage?group_by=model', await creds.headers(tenant))).body,
      (body) => ((body['items'] as unknown[] | undefined) ?? []).length > 0,
    );
    const row = (usage['items'] as Array<{ model: string; cost_usd: number; prompt_tokens: number }>).find(
      (item) => item.model === 'shady',
    );
    expect(row?.prompt_tokens).toBeGreaterThan(0);
    expect(row?.cost_usd).toBeGreaterThan(0);
  });

  /** A provider refusing the key Blocks sent, in its own words (which must not reach the caller). */
  const keyRefused = (status: number) =>
    sendText(
      JSON.stringify({
        error: { message: 'Incorrect API key provided: sk-live-OPERATOR. Org org-internal-42.', type: 'invalid_request_error' },
      }),
      status,
    );

  it("answers 502 with a generic detail when a provider refuses Blocks' own key (401, 403), never the provider's body", async () => {
    for (const status of [401, 403]) {
      const answer = await shady(keyRefused(status));
      expect(answer.status, String(status)).toBe(502);
      expect(answer.body['code'], String(status)).toBe('PROVIDER_AUTH_FAILED');
      expect(answer.body['error']).toMatchObject({ type: 'api_error', code: 'provider_auth_failed' });
      expect(answer.body['provider_status'], String(status)).toBeUndefined();
      expect(answer.text, String(status)).not.toMatch(/OPERATOR|org-internal|Incorrect API key/);
    }
  });

  it("fails over to the next deployment when one's key is refused: charged to that deployment, the body kept in the call record", async () => {
    hostile.answer(keyRefused(401));
    const breakers = () => new Map(blocks.platform.breakers.states().map((b) => [b.name, b.failures]));
    const before = breakers();
    // The refused deployment comes first in all but about one call in a million (its weight).
    const correlationId = `refused-key-${Date.now()}`;
    const answer = await call(
      'POST',
      '/v1/chat/completions',
      { ...(await creds.headers()), 'x-correlation-id': correlationId },
      {
        model: 'guarded',
        messages: [{ role: 'user', content: 'hello there' }],
      },
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-blocks-attempts')).toBe('2');
    expect(answer.text).not.toMatch(/OPERATOR|org-internal/);
    const after = breakers();
    expect(after.get('ai.deployment.guarded/bad-key')).toBe((before.get('ai.deployment.guarded/bad-key') ?? 0) + 1);
    expect(after.get('ai.provider.hostile') ?? 0).toBe(before.get('ai.provider.hostile') ?? 0);
    const [event] = await eventually(
      async () =>
        (
          await blocks.platform.db.query<{ payload: { attempts: Array<Record<string, unknown>> } }>(
            `SELECT payload FROM events WHERE correlation_id = $1 AND event_type LIKE 'ai.request.%'`,
            [correlationId],
          )
        ).rows,
      (rows) => rows.length > 0,
    );
    expect(event?.payload.attempts[0]).toMatchObject({ deployment: 'bad-key', outcome: 'PROVIDER_AUTH_FAILED', kind: 'auth' });
    expect(event?.payload.attempts[0]?.['provider_body']).toMatch(/Incorrect API key provided/);
  });

  it("passes on a refused request's (400) error message alone, bounded, without control characters; nothing of a body without one", async () => {
    const message = `max_tokens is too large\u001b[2J\u0007\r\nInjected: line ${'x'.repeat(2000)}`;
    const body = JSON.stringify({
      debug: 'stack at /srv/app.py:42',
      error: { trace: 'trace-7f3a', message, type: 'invalid_request_error', param: 'max_tokens' },
    });
    const refused = await shady(sendText(body, 400));
    expect(refused.status).toBe(400);
    expect(refused.body['code']).toBe('PROVIDER_REJECTED_REQUEST');
    const detail = refused.body['detail'] as string;
    expect(detail).toContain('max_tokens is too large');
    expect(detail.length).toBeLessThanOrEqual(600);
    expect(refused.text).not.toMatch(/trace-7f3a|app\.py|xxxxxxxxxx{600}/);
    expect(detail).not.toMatch(/\p{Cc}/u);

    const page = await shady(sendText('<html><body>nginx error page, upstream 10.0.0.5</body></html>', 400, 'text/html'));
    expect(page.status).toBe(400);
    expect(page.body['code']).toBe('PROVIDER_REJECTED_REQUEST');
    expect(page.text).not.toMatch(/nginx|10\.0\.0\.5/);
  });
});

describe("API10 unsafe consumption: an identity provider's documents", () => {
  const tokenOf = (issuer: string) =>
    new SignJWT({ tenant: 'oidc-tenant', scope: 'service:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer(`${idp.origin}/${issuer}`)
      .setAudience('blocks')
      .setSubject('someone')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(idpKey);
  const withToken = async (issuer: string) => call('GET', '/api/v1/autonomous', { authorization: `Bearer ${await tokenOf(issuer)}` });

  it("follows a discovery document's jwks_uri to another host: the configured issuer vouches for where its keys are", async () => {
    // jwt-verifier.ts: the document must name the issuer it was fetched for; its jwks_uri may be anywhere.
    expect((await withToken('elsewhere')).status).toBe(200);
  });

  it('answers 503 TOKEN_ISSUER_UNAVAILABLE, never a crash or a pass, when discovery names another issuer, redirects, is not JSON or its keys are junk', async () => {
    for (const issuer of ['liar', 'redirect', 'garbage', 'junk-keys']) {
      const answer = await withToken(issuer);
      expect(answer.status, issuer).toBe(503);
      expect(answer.body['code'], issuer).toBe('TOKEN_ISSUER_UNAVAILABLE');
      expect(Number(answer.headers.get('retry-after')), issuer).toBeGreaterThan(0);
      expect(answer.text, issuer).not.toMatch(/someone-else|<html>|not json/);
    }
    expect((await withToken('elsewhere')).status).toBe(200);
  });

  // A key set the issuer fails to serve (an error status, or a page that is not JSON) is the issuer's fault, never the
  // token's: 503 with Retry-After tells the caller to try the same token again, where a 401 would send it for a new
  // one that fares no better, and would count against its address as a failed attempt.
  it('answers 503 TOKEN_ISSUER_UNAVAILABLE with Retry-After when the key set answers an error status or is not JSON', async () => {
    for (const issuer of ['failing-keys', 'html-keys']) {
      const answer = await withToken(issuer);
      expect(answer.status, issuer).toBe(503);
      expect(answer.body['code'], issuer).toBe('TOKEN_ISSUER_UNAVAILABLE');
      expect(Number(answer.headers.get('retry-after')), issuer).toBeGreaterThan(0);
      expect(answer.text, issuer).not.toMatch(/login page/);
    }
  });
});

describe('API6 sensitive business flows: spending is bounded by the budget', () => {
  it('refuses calls past the budget with 402 and Retry-After before any provider is called, and only ai:budgets can lift it', async () => {
    const tenant = 'third-party-budget';
    const admin = await creds.headers(tenant);
    expect((await call('PUT', `/api/v1/autonomous/ai/budgets/tenant/${tenant}/day`, admin, { limit_usd: 0 })).status).toBe(201);
    const before = fake.requests.length;
    const refused = await chat('steady', tenant);
    expect(refused.status).toBe(402);
    expect(refused.body['code']).toBe('BUDGET_EXCEEDED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(fake.requests.length).toBe(before);
    const caller = await creds.headers(tenant, ['ai:invoke']);
    expect((await call('PUT', `/api/v1/autonomous/ai/budgets/tenant/${tenant}/day`, caller, { limit_usd: 100 })).status).toBe(403);
    expect((await call('PUT', `/api/v1/autonomous/ai/budgets/tenant/${tenant}/day`, admin, { limit_usd: 100 })).status).toBe(200);
    expect((await chat('steady', tenant)).status).toBe(200);
  });
  // Concurrent calls let through exactly what fits: test/autonomous/ai-router/budgets/budgets-e2e.test.ts.

  it('charges a stream the client abandons for what it delivered: budget spend, usage and the call event agree', async () => {
    const tenant = 'third-party-abandon';
    const admin = await creds.headers(tenant);
    expect((await call('PUT', `/api/v1/autonomous/ai/budgets/tenant/${tenant}/day`, admin, { limit_usd: 1 })).status).toBe(201);
    // A long answer, one word every 100 ms: the client reads a few words and goes away.
    fake.setBehaviour({ kind: 'slow_stream', delayMs: 100 });
    const correlationId = `abandon-${Date.now()}`;
    const abandoned = fake.nextAbandoned();
    let read: string;
    try {
      read = await readStreamThenLeave(
        await creds.headers(tenant),
        correlationId,
        { model: 'steady', stream: true, messages: [{ role: 'user', content: 'a '.repeat(100) }] },
        5,
      );
      await abandoned;
    } finally {
      fake.setBehaviour({ kind: 'answer' });
    }
    expect(read).toMatch(/^echo: a a a/);

    const [event] = await eventually(
      async () =>
        (
          await blocks.platform.db.query<{ event_type: string; payload: Record<string, unknown> }>(
            `SELECT event_type, payload FROM events WHERE correlation_id = $1 AND event_type LIKE 'ai.request.%'`,
            [correlationId],
          )
        ).rows,
      (rows) => rows.length > 0,
    );
    // The record says the client left; it is charged the prompt and every token it was sent, no more.
    expect(event?.event_type).toBe('ai.request.failed');
    expect(event?.payload).toMatchObject({
      error_code: 'CLIENT_CLOSED_REQUEST',
      status: 499,
      stream: true,
      model: 'steady',
      deployment: 'default',
    });
    const {
      prompt_tokens: prompt,
      completion_tokens: completion,
      cost_usd: cost,
    } = event?.payload as { prompt_tokens: number; completion_tokens: number; cost_usd: number };
    const readTokens = read.split(' ').length + 1; // 'echo', ':' and one ' a' per word read
    expect(prompt).toBeGreaterThan(100);
    expect(completion).toBeGreaterThanOrEqual(readTokens);
    expect(completion).toBeLessThan(readTokens + 5);
    expect(cost).toBeCloseTo((prompt * 1 + completion * 2) / 1e6, 12);

    // The hold was settled with that cost, not given back.
    const budgets = (await call('GET', '/api/v1/autonomous/ai/budgets', admin)).body['items'] as Array<{
      spent_usd: number;
      held_usd: number;
    }>;
    expect(budgets[0]?.held_usd).toBe(0);
    expect(budgets[0]?.spent_usd).toBeCloseTo(cost, 12);
    const usage = await eventually(
      async () => (await call('GET', '/api/v1/autonomous/ai/usage?group_by=', admin)).body['totals'] as Record<string, number>,
      (totals) => totals['requests'] === 1,
    );
    expect(usage).toMatchObject({ requests: 1, failures: 1, prompt_tokens: prompt, completion_tokens: completion });
    expect(usage['cost_usd']).toBeCloseTo(cost, 12);
  });
});

/**
 * Streams a chat completion through the gateway with a real HTTP client and destroys the socket
 * once `pieces` content pieces arrived; resolves with the content read until then.
 */
function readStreamThenLeave(headers: Record<string, string>, correlationId: string, body: unknown, pieces: number): Promise<string> {
  const url = new URL(`${blocks.urls.gateway as string}/v1/chat/completions`);
  return new Promise<string>((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': correlationId, ...headers }, agent: false },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        let buffer = '';
        const content: string[] = [];
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          buffer += text;
          const events = buffer.split('\n\n');
          buffer = events.pop() ?? '';
          for (const event of events) {
            const data = event.replace(/^data: /, '');
            if (data === '[DONE]') continue;
            const piece = (JSON.parse(data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content;
            if (piece) content.push(piece);
          }
          if (content.length >= pieces && !req.destroyed) {
            req.destroy();
            resolve(content.join(''));
          }
        });
        res.on('end', () => reject(new Error(`the stream ended after ${content.length} pieces`)));
      },
    );
    req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
    req.end(JSON.stringify(body));
  });
}
