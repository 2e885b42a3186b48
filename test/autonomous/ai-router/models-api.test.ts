import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { RunningBlocks } from '../../../src/start.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { testCredentials } from '../../support/credentials.ts';
import { AI_CONFIG_SECTION } from '../../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../../src/platform/config/section.ts';
import { withMigratedPglite } from '../../support/templates.ts';

const send = (method: string, body?: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method,
  headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

const newModel = (model: string, overrides: Record<string, unknown> = {}) => ({
  model,
  provider: 'acme',
  task_types: ['code'],
  context_window: 64000,
  input_price_per_mtok: 0.01,
  output_price_per_mtok: 0.02,
  quality: { code: { low: 0.999, medium: 0.999, high: 0.999 } },
  typical_latency_ms: 300,
  credentials_ref: 'env:ACME_API_KEY',
  ...overrides,
});

describe('AI model catalog API (PGlite, in-process bus)', () => {
  const dir = tempDir('blocks-models');
  const configured = (
    parseYaml(readFileSync(sectionOf(testConfig(), AI_CONFIG_SECTION).catalog_file, 'utf8')) as { models: Array<{ model: string }> }
  ).models;
  let blocks: RunningBlocks;
  let base: string;
  // Read through a getter: the keys are in the data directory and outlast the restart below.
  const creds = testCredentials({
    get identity() {
      return blocks.identity;
    },
  });
  /** A call with a key of the default tenant holding `scopes` (all of them unless said). */
  const call = async (path: string, init: RequestInit = {}, scopes?: readonly string[]) =>
    fetch(`${base}/api/v1/autonomous/ai/models${path}`, {
      ...init,
      headers: { ...(await creds.headers('default', scopes)), ...(init.headers as Record<string, string> | undefined) },
    });
  const route = async (taskType = 'code', complexity = 'high') => {
    const res = await fetch(`${base}/api/v1/autonomous/ai/route`, {
      ...send('POST', { task_type: taskType, complexity, context: { prompt: 'hi' } }),
      headers: { 'content-type': 'application/json', ...(await creds.headers()) },
    });
    return { status: res.status, body: (await res.json()) as { selected_model?: string; code?: string } };
  };
  const counts = async () => {
    const models = await blocks.platform.db.query<{ n: number }>('SELECT count(*)::int AS n FROM ai_models');
    const events = await blocks.platform.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE event_type = 'ai.catalog.changed'",
    );
    return { models: models.rows[0]?.n, events: events.rows[0]?.n };
  };

  beforeAll(async () => {
    blocks = await startTestBlocks({
      config: testConfig({
        BLOCKS_DATA_DIR: withMigratedPglite(dir.path),
        BLOCKS__ai__providers__acme: JSON.stringify({ protocol: 'openai', base_url: 'http://127.0.0.1:9/v1', region: 'eu' }),
      }),
      roles: ['autonomous'],
    });
    base = blocks.urls.autonomous as string;
  });
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it('seeds the empty table from config/models.yaml once, writing no change events', async () => {
    const rows = await blocks.platform.db.query<{ model: string; enabled: boolean }>('SELECT model, enabled FROM ai_models ORDER BY model');
    expect(rows.rows.map((r) => r.model)).toEqual(configured.map((m) => m.model).sort());
    expect(rows.rows.every((r) => r.enabled)).toBe(true);
    expect((await counts()).events).toBe(0);
  });

  it('does not seed again when a second process starts on the same database', async () => {
    await blocks.platform.db.query('DELETE FROM ai_models WHERE model = $1', [configured[0]?.model]);
    const before = await counts();
    await blocks.close();
    blocks = await startTestBlocks({
      config: testConfig({
        BLOCKS_DATA_DIR: withMigratedPglite(dir.path),
        BLOCKS__ai__providers__acme: JSON.stringify({ protocol: 'openai', base_url: 'http://127.0.0.1:9/v1', region: 'eu' }),
      }),
      roles: ['autonomous'],
    });
    base = blocks.urls.autonomous as string;
    expect(await counts()).toEqual(before);
    const res = await call(`/${configured[0]?.model}`);
    expect(res.status).toBe(404);
  });

  it('walks the whole list exactly once with cursor pagination', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Response = await call(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { items: Array<{ model: string }>; next_cursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((m) => m.model));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 50);
    const all = await blocks.platform.db.query<{ model: string }>('SELECT model FROM ai_models ORDER BY model');
    expect(seen).toEqual(all.rows.map((r) => r.model));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await call('?cursor=not-ours!')).status).toBe(400);
  });

  it('lets a key holding only ai:models:read list and read models but change none (403 naming ai:models:write)', async () => {
    const read = ['ai:models:read'];
    const listed = await call('?limit=2', {}, read);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { items: unknown[] }).items).toHaveLength(2);
    expect((await call(`/${configured[1]?.model}`, {}, read)).status).toBe(200);

    const before = await counts();
    const { model: _, ...fields } = newModel(configured[1]?.model as string, { typical_latency_ms: 1 });
    for (const [label, res] of [
      ['POST', await call('', send('POST', newModel('read-only-coder')), read)],
      ['PUT', await call(`/${configured[1]?.model}`, send('PUT', fields), read)],
      ['DELETE', await call(`/${configured[1]?.model}`, send('DELETE'), read)],
    ] as const) {
      expect(res.status, label).toBe(403);
      expect(res.headers.get('www-authenticate'), label).toContain('scope="ai:models:write"');
      expect(await res.json(), label).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:write' });
    }
    expect(await counts()).toEqual(before);
    expect((await call('/read-only-coder')).status).toBe(404);
    expect(await (await call(`/${configured[1]?.model}`)).json()).toMatchObject({ version: 1 });

    // Writing is not reading either: each scope grants only its own routes.
    const writeOnly = await call('?limit=2', {}, ['ai:models:write']);
    expect(writeOnly.status).toBe(403);
    expect(await writeOnly.json()).toMatchObject({ code: 'INSUFFICIENT_SCOPE', scope: 'ai:models:read' });
  });

  it('refuses the catalog to a caller without a credential (401 AUTHENTICATION_REQUIRED)', async () => {
    const before = await counts();
    for (const res of [
      await fetch(`${base}/api/v1/autonomous/ai/models`),
      await fetch(`${base}/api/v1/autonomous/ai/models`, send('POST', newModel('anonymous-coder'))),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="blocks"');
      expect(await res.json()).toMatchObject({ code: 'AUTHENTICATION_REQUIRED' });
    }
    expect(await counts()).toEqual(before);
  });

  it('creates a model (201), never returns its credentials reference, and writes the event with it', async () => {
    const before = await counts();
    const res = await call('', send('POST', newModel('acme-coder')));
    expect(res.status).toBe(201);
    const text = await res.text();
    expect(text).not.toContain('ACME_API_KEY');
    expect(text).not.toContain('credentials_ref');
    const created = JSON.parse(text) as Record<string, unknown>;
    expect(created).toMatchObject({ model: 'acme-coder', has_credentials: true, enabled: true, version: 1, typical_latency_ms: 300 });
    expect(await counts()).toEqual({ models: (before.models ?? 0) + 1, events: (before.events ?? 0) + 1 });
    const event = await blocks.platform.db.query<{ payload: unknown }>(
      "SELECT payload FROM events WHERE event_type = 'ai.catalog.changed' ORDER BY sequence DESC LIMIT 1",
    );
    expect(event.rows[0]?.payload).toEqual({ model: 'acme-coder', action: 'created' });

    const got = await call('/acme-coder');
    expect(got.status).toBe(200);
    expect(await got.text()).not.toContain('ACME_API_KEY');
    const list = await (await call('?limit=200')).text();
    expect(list).not.toContain('ACME_API_KEY');
  });

  it('stores capabilities and deployments, showing whether each deployment has credentials but never the reference', async () => {
    const deployments = [
      { id: 'eu-1', weight: 3, credentials_ref: 'env:ACME_EU_API_KEY', upstream_model: 'acme-large-eu' },
      { id: 'us-1', provider: 'openai', base_url: 'https://acme.example/v1', region: 'us' },
    ];
    const res = await call('', send('POST', newModel('acme-deployed', { capabilities: ['tools', 'vision'], deployments })));
    expect(res.status).toBe(201);
    const text = await res.text();
    expect(text).not.toContain('ACME_EU_SECRET_KEY');
    expect(JSON.parse(text)).toMatchObject({
      capabilities: ['tools', 'vision'],
      deployments: [
        { id: 'eu-1', weight: 3, upstream_model: 'acme-large-eu', has_credentials: true },
        { id: 'us-1', provider: 'openai', base_url: 'https://acme.example/v1', region: 'us', has_credentials: false },
      ],
    });
    expect((await call('/acme-deployed', send('DELETE'))).status).toBe(204);
  });

  it.each([
    [{ provider: 'nowhere' }, 'provider'],
    [{ deployments: [{ id: 'a' }, { id: 'a' }] }, 'deployments[1].id'],
    [{ deployments: [{ id: 'a', provider: 'nowhere' }] }, 'deployments[0].provider'],
    [{ deployments: [{ id: 'a', base_url: 'ftp://x' }] }, 'deployments[0].base_url'],
    [{ deployments: [{ id: 'a', weight: 0 }] }, 'deployments'],
    [{ capabilities: ['telepathy'] }, 'capabilities'],
    [{ deployments: [{ id: 'a', api_key: 'sk-raw' }] }, 'deployments'],
  ])('refuses %j with a 400 naming %s, writing nothing', async (overrides, field) => {
    const before = await counts();
    const res = await call('', send('POST', newModel('acme-bad', overrides)));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.text()).toContain(field);
    expect(await counts()).toEqual(before);
  });

  it('routes to the added better model at once, and away from it when disabled or deleted', async () => {
    expect((await route()).body.selected_model).toBe('acme-coder');

    const disabled = await call('/acme-coder', send('PUT', { ...newModel('acme-coder', { enabled: false }), model: undefined }));
    expect(disabled.status).toBe(200);
    expect(await disabled.json()).toMatchObject({ enabled: false, version: 2, has_credentials: true });
    const afterDisable = await route();
    expect(afterDisable.status).toBe(200);
    expect(afterDisable.body.selected_model).not.toBe('acme-coder');

    const { model: _, ...fields } = newModel('acme-coder', { credentials_ref: null });
    const enabled = await call('/acme-coder', send('PUT', fields));
    expect(await enabled.json()).toMatchObject({ enabled: true, version: 3, has_credentials: false });
    expect((await route()).body.selected_model).toBe('acme-coder');

    const deleted = await call('/acme-coder', send('DELETE'));
    expect(deleted.status).toBe(204);
    expect((await route()).body.selected_model).not.toBe('acme-coder');
    expect((await call('/acme-coder')).status).toBe(404);
  });

  it('serves a task type only while some enabled model has it', async () => {
    expect((await route('poetry')).body.code).toBe('UNKNOWN_TASK_TYPE');
    const res = await call(
      '',
      send('POST', newModel('acme-poet', { task_types: ['poetry'], quality: { poetry: { low: 0.9, medium: 0.8, high: 0.7 } } })),
    );
    expect(res.status).toBe(201);
    expect((await route('poetry')).body.selected_model).toBe('acme-poet');
    expect((await call('/acme-poet', send('DELETE'))).status).toBe(204);
    expect((await route('poetry')).body.code).toBe('UNKNOWN_TASK_TYPE');
  });

  it.each([
    ['a quality above 1', newModel('bad-1', { quality: { code: { low: 1.5, medium: 0.9, high: 0.9 } } })],
    ['no quality for a declared task type', newModel('bad-2', { task_types: ['code', 'chat'] })],
    [
      'a quality for an undeclared task type',
      newModel('bad-3', { quality: { code: { low: 0.9, medium: 0.9, high: 0.9 }, chat: { low: 0.9, medium: 0.9, high: 0.9 } } }),
    ],
    ['a negative price', newModel('bad-4', { input_price_per_mtok: -1 })],
    ['an unknown field', newModel('bad-5', { colour: 'blue' })],
    ['a duplicate task type', newModel('bad-6', { task_types: ['code', 'code'] })],
  ])('refuses %s with a 400 problem and writes nothing', async (_, body) => {
    const before = await counts();
    const res = await call('', send('POST', body));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { code: string; detail: string };
    expect(['VALIDATION_FAILED', 'INVALID_MODEL']).toContain(problem.code);
    expect(problem.detail).toMatch(/\S/);
    expect(await counts()).toEqual(before);
  });

  it('names the bad field when the catalog rules refuse a model', async () => {
    const res = await call('', send('POST', newModel('bad-7', { task_types: ['code', 'chat'] })));
    expect(await res.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'quality.chat' });
  });

  it('refuses a credentials_ref outside the secrets bounds on create and replace, naming the field and writing nothing', async () => {
    const before = await counts();
    const created = await call('', send('POST', newModel('acme-exfil', { deployments: [{ id: 'eu', credentials_ref: 'env:PATH' }] })));
    expect(created.status).toBe(400);
    expect(created.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await created.json()).toMatchObject({ code: 'INVALID_MODEL', field: 'deployments[0].credentials_ref' });
    expect(await counts()).toEqual(before);

    expect((await call('', send('POST', newModel('acme-kept')))).status).toBe(201);
    const { model: _, ...fields } = newModel('acme-kept', {
      credentials_ref: `file:${blocks.platform.config.data_dir}/keys/key-encryption.key`,
    });
    const replaced = await call('/acme-kept', send('PUT', fields));
    expect(replaced.status).toBe(400);
    const problem = (await replaced.json()) as { field: string; detail: string };
    expect(problem.field).toBe('credentials_ref');
    expect(problem.detail).toMatch(/is not under a directory secrets.directories allows|data directory/);
    expect(await (await call('/acme-kept')).json()).toMatchObject({ version: 1, has_credentials: true });
    const stored = await blocks.platform.db.query<{ credentials_ref: string }>(
      "SELECT credentials_ref FROM ai_models WHERE model = 'acme-kept'",
    );
    expect(stored.rows[0]?.credentials_ref).toBe('env:ACME_API_KEY');
    expect((await call('/acme-kept', send('DELETE'))).status).toBe(204);
  });

  it('answers 409 for an existing id and 404 for a missing one, writing nothing', async () => {
    const before = await counts();
    const dup = await call('', send('POST', newModel(configured[1]?.model as string)));
    expect(dup.status).toBe(409);
    expect(await dup.json()).toMatchObject({ code: 'MODEL_EXISTS' });
    const { model: _, ...fields } = newModel('ghost');
    expect(await (await call('/ghost', send('PUT', fields))).json()).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
    expect(await (await call('/ghost', send('DELETE'))).json()).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
    expect((await call('/ghost')).status).toBe(404);
    expect(await counts()).toEqual(before);
  });

  it('refuses a replace against a stale version with 412 and keeps the newer one', async () => {
    const created = await call('', send('POST', newModel('acme-versioned')));
    expect(created.headers.get('etag')).toBe('"1"');
    const { model: _, ...fields } = newModel('acme-versioned', { typical_latency_ms: 111 });
    const first = await call('/acme-versioned', send('PUT', fields, { 'if-match': '"1"' }));
    expect(first.status).toBe(200);
    const stale = await call('/acme-versioned', send('PUT', { ...fields, typical_latency_ms: 999 }, { 'if-match': '"1"' }));
    expect(stale.status).toBe(412);
    expect(await stale.json()).toMatchObject({ code: 'MODEL_VERSION_MISMATCH', current_version: 2 });
    const staleBody = await call('/acme-versioned', send('PUT', { ...fields, typical_latency_ms: 999, version: 1 }));
    expect(staleBody.status).toBe(412);
    expect(await (await call('/acme-versioned')).json()).toMatchObject({ typical_latency_ms: 111, version: 2 });
    expect((await call('/acme-versioned', send('DELETE'))).status).toBe(204);
  });
});
