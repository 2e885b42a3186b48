import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { Role, RunningBlocks } from '../../src/start.ts';
import { captureLogs, eventually, startTestBlocks, tempDir, testConfig, type CapturedLogs } from '../support/blocks.ts';
import { testCredentials } from '../support/credentials.ts';
import { startFakeOpenAi, type FakeProvider } from '../support/fake-providers/index.ts';
import { catalogModel } from '../support/catalog-model.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { probeService } from '../support/services.ts';

// NUL (U+0000) and other control characters in every string a route takes, on both databases:
// PostgreSQL cannot store U+0000 in text or jsonb, so one that reached SQL was a 500 and lost the
// call's record. The test walks every route each process serves, from the OpenAPI document the
// route schemas make, so a route added later is walked too: each path parameter, query parameter
// and string in the body in turn gets a NUL, and nothing may answer 5xx or log an error. Where the
// same request without the NUL is accepted, the NUL must be refused with 400.

const postgres = await probeService('postgres');

interface Schema {
  readonly type?: string | readonly string[];
  readonly properties?: Record<string, Schema>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly anyOf?: readonly Schema[];
  readonly oneOf?: readonly Schema[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly minLength?: number;
  readonly minItems?: number;
  readonly minimum?: number;
  readonly format?: string;
}
interface Operation {
  readonly parameters?: ReadonlyArray<{ readonly in: string; readonly name: string; readonly schema?: Schema }>;
  readonly requestBody?: { readonly content: Record<string, { readonly schema: Schema }> };
}
type Path = ReadonlyArray<string | number>;

const NUL = 'a\u0000b';
/** Values a generated body gives string fields whose format or name a plain `x` would not satisfy. */
const STRING_BY_FORMAT: Record<string, string> = {
  email: 'someone@nul.example',
  uri: 'https://nul.example/v1',
  'date-time': '2030-01-01T00:00:00Z',
  uuid: '00000000-0000-4000-8000-000000000000',
};
const STRING_BY_NAME: Record<string, string> = {
  password: 'a password long enough',
  email: 'someone@nul.example',
  fingerprint: 'nul-device-0001',
  task_type: 'chat',
  model: 'nul-model',
  content: 'hello',
  role: 'user',
};

/** Bodies for routes whose rules span fields, where a generated one would be refused whatever its strings hold. */
const BODIES: Record<string, unknown> = {
  'POST /oauth/token': { grant_type: 'client_credentials', client_id: 'cl_000000000000000000000000', client_secret: 'bks_x' },
  'POST /api/v1/autonomous/ai/models': catalogModel('nul-model-2'),
  'PUT /api/v1/autonomous/ai/models/:model': (({ model: _id, ...rest }) => rest)(catalogModel('x')),
  'POST /v1/chat/completions': { model: 'nul-model', messages: [{ role: 'user', content: 'hello' }] },
};

const typeOf = (schema: Schema): string | undefined =>
  Array.isArray(schema.type) ? schema.type.find((type) => type !== 'null') : (schema.type as string | undefined);
const branch = (schema: Schema): Schema | undefined => (schema.anyOf ?? schema.oneOf)?.find((s) => typeOf(s) !== 'null');

/** The smallest body the schema accepts, as far as a generator can tell: required members only. */
function sample(schema: Schema, name = ''): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum !== undefined) return schema.enum[0];
  const alternatives = schema.anyOf ?? schema.oneOf;
  const alternative = (name in STRING_BY_NAME && alternatives?.find((s) => typeOf(s) === 'string')) || branch(schema);
  if (alternative) return sample(alternative, name);
  switch (typeOf(schema)) {
    case 'object':
      return Object.fromEntries((schema.required ?? []).map((key) => [key, sample(schema.properties?.[key] ?? {}, key)]));
    case 'array':
      return Array.from({ length: Math.max(1, schema.minItems ?? 0) }, () => sample(schema.items ?? {}, name));
    case 'string':
      return STRING_BY_NAME[name] ?? STRING_BY_FORMAT[schema.format ?? ''] ?? 'x'.repeat(Math.max(1, schema.minLength ?? 0));
    case 'integer':
    case 'number':
      return Math.max(1, schema.minimum ?? 1);
    case 'boolean':
      return true;
    default:
      return {};
  }
}

/** Every string member of the schema (required or not), as the path to it, a few levels deep. */
function stringPaths(schema: Schema, path: Path = [], depth = 0): Path[] {
  if (depth > 5 || schema.const !== undefined || schema.enum !== undefined) return [];
  const alternative = branch(schema);
  if (alternative) return stringPaths(alternative, path, depth);
  switch (typeOf(schema)) {
    case 'string':
      return [path];
    case 'object':
      return Object.entries(schema.properties ?? {}).flatMap(([key, child]) => stringPaths(child, [...path, key], depth + 1));
    case 'array':
      return schema.items ? stringPaths(schema.items, [...path, 0], depth + 1) : [];
    default:
      return [];
  }
}

/** `body` with the member at `path` set to `value`, the members on the way made from the schema when missing. */
function withValue(body: unknown, schema: Schema, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const alternative = branch(schema);
  if (alternative) return withValue(body, alternative, path, value);
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const items = Array.isArray(body) && body.length > 0 ? [...(body as unknown[])] : [sample(schema.items ?? {})];
    items[0] = withValue(items[0], schema.items ?? {}, rest, value);
    return items;
  }
  const child = schema.properties?.[head as string] ?? {};
  const object = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  return { ...object, [head as string]: withValue(object[head as string] ?? sample(child, head), child, rest, value) };
}

const pointer = (path: Path): string => `/${path.join('/')}`;

for (const backend of [
  { name: 'PGlite', available: true, database: async (): Promise<TestDatabase | undefined> => undefined },
  { name: 'PostgreSQL', available: postgres.ok, database: (): Promise<TestDatabase | undefined> => createTestDatabase('blocks_nul') },
]) {
  describe.skipIf(!backend.available)(`control characters in what callers send, on ${backend.name}`, { timeout: 180_000 }, () => {
    const dir = tempDir('blocks-control-characters');
    let database: TestDatabase | undefined;
    let blocks: RunningBlocks;
    let fake: FakeProvider;
    let logs: CapturedLogs;
    let headers: Record<string, string>;

    beforeAll(async () => {
      database = await backend.database();
      fake = await startFakeOpenAi({ kind: 'answer' });
      const catalogFile = join(dir.path, 'models.yaml');
      writeFileSync(catalogFile, toYaml({ models: [catalogModel('nul-model')] }));
      logs = captureLogs('error');
      blocks = await startTestBlocks({
        config: testConfig(
          { BLOCKS_DATA_DIR: join(dir.path, 'data'), ...(database ? { DATABASE_URL: database.url } : {}) },
          { ai: { catalog_file: catalogFile, providers: { fake: { protocol: 'openai', base_url: fake.baseUrl } } } },
        ),
        logger: logs.logger,
      });
      headers = await testCredentials(blocks).headers('nul');
    }, 120_000);

    afterAll(async () => {
      await blocks?.close();
      await fake?.close();
      await database?.drop();
      dir.remove();
    });

    /** Error lines logged since `from` (an index into the captured lines). */
    const errorsSince = (from: number): unknown[] =>
      logs.lines
        .slice(from)
        .filter((line) => line['level'] === 'error')
        .map((line) => line['msg']);

    const send = async (
      role: Role,
      method: string,
      path: string,
      body?: { json: unknown } | { form: Record<string, string> },
      correlationId = 'control-characters',
    ) => {
      const request: RequestInit & { headers: Record<string, string> } = {
        method,
        headers: { ...headers, 'x-correlation-id': correlationId },
      };
      if (body !== undefined && 'json' in body) {
        request.headers['content-type'] = 'application/json';
        request.body = JSON.stringify(body.json);
      } else if (body !== undefined) {
        request.headers = { 'content-type': 'application/x-www-form-urlencoded' };
        request.body = new URLSearchParams(body.form).toString();
      }
      const response = await fetch(`${blocks.urls[role] as string}${path}`, request);
      const text = await response.text();
      return { status: response.status, text, body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown> };
    };

    it.each<Role>(['gateway', 'autonomous', 'collaborative'])(
      '%s: a NUL in any path parameter, query parameter or body string is a 4xx (400 where the request was fine without it), never a 5xx',
      async (role) => {
        const doc = (await (await fetch(`${blocks.urls[role] as string}/docs/json`)).json()) as {
          paths: Record<string, Record<string, Operation>>;
        };
        const served = (blocks.apps[role]?.routeInventory() ?? []).filter(
          (route) => !route.hidden && !route.url.startsWith('/docs') && route.method !== 'HEAD' && route.method !== 'OPTIONS',
        );
        expect(served.length).toBeGreaterThan(0);
        const logged = logs.lines.length;
        const wrong: string[] = [];
        let refusedWhereFine = 0;
        for (const route of served) {
          const operation = doc.paths[route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[route.method.toLowerCase()] ?? {};
          const parameters = operation.parameters ?? [];
          const pathOf = (nulIn?: string, query = ''): string =>
            route.url.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => (name === nulIn ? '%00' : 'x')) + query;
          const [contentType, content] = Object.entries(operation.requestBody?.content ?? {})[0] ?? [];
          const bodySchema = content?.schema;
          const baseBody = BODIES[`${route.method} ${route.url}`] ?? (bodySchema ? sample(bodySchema) : undefined);
          const wrap = (value: unknown) =>
            value === undefined
              ? undefined
              : contentType === 'application/x-www-form-urlencoded'
                ? { form: value as Record<string, string> }
                : { json: value };

          const cases: Array<{ what: string; path: string; body?: unknown }> = [
            ...parameters.filter((p) => p.in === 'path').map((p) => ({ what: `path ${p.name}`, path: pathOf(p.name), body: baseBody })),
            ...parameters
              .filter((p) => p.in === 'query' && (p.schema === undefined || typeOf(p.schema) === 'string'))
              .map((p) => ({ what: `query ${p.name}`, path: pathOf(undefined, `?${p.name}=a%00b`), body: baseBody })),
            ...(bodySchema
              ? stringPaths(bodySchema).map((at) => ({
                  what: `body ${pointer(at)}`,
                  path: pathOf(),
                  body: withValue(baseBody, bodySchema, at, NUL),
                }))
              : []),
          ];
          if (cases.length === 0) continue;
          const baseline = await send(role, route.method, pathOf(), wrap(baseBody));
          for (const test of cases) {
            const answer = await send(role, route.method, test.path, wrap(test.body));
            const label = `${route.method} ${route.url} (${test.what}): ${answer.status} ${answer.text.slice(0, 160)}`;
            if (answer.status >= 500 || answer.status < 400) wrong.push(label);
            else if (baseline.status < 400 && answer.status !== 400) wrong.push(`${label}, though ${baseline.status} without the NUL`);
            else if (baseline.status < 400) refusedWhereFine++;
          }
        }
        expect(wrong).toEqual([]);
        expect(errorsSince(logged)).toEqual([]);
        // The walk reached the handlers: requests that were accepted without the NUL were refused with it.
        if (role === 'gateway' || role === 'autonomous') expect(refusedWhereFine).toBeGreaterThan(3);
      },
    );

    it('refuses the NUL the attack used, where it used it, with 400 naming the field; what is refused changes nothing', async () => {
      const logged = logs.lines.length;
      for (const path of ['/api/v1/identity/clients/%00', '/api/v1/identity/tenants/%00', '/api/v1/identity/api-keys/%00']) {
        const answer = await send('gateway', 'GET', path);
        expect(answer.status, path).toBe(400);
        expect(answer.body['code'], path).toBe('VALIDATION_FAILED');
      }
      for (const [path, body] of [
        ['/api/v1/identity/api-keys', { name: NUL, scopes: [] }],
        ['/api/v1/identity/clients', { name: NUL, scopes: [] }],
        ['/api/v1/identity/devices', { name: NUL, fingerprint: 'nul-device-0002' }],
        ['/api/v1/identity/tenants', { id: 'nul-tenant-b', name: NUL }],
      ] as const) {
        const answer = await send('gateway', 'POST', path, { json: body });
        expect(answer.status, path).toBe(400);
        expect(answer.body['code'], path).toBe('VALIDATION_FAILED');
        expect(answer.body['errors'], path).toEqual([expect.objectContaining({ location: 'body', pointer: '/name' })]);
      }
      for (const json of [
        { model: 'gpt-4o\u0000', messages: [{ role: 'user', content: 'hello' }] },
        // Members the schema leaves untyped are refused the same: JSON bodies carry no U+0000 at all.
        { model: 'nul-model', messages: [{ role: 'user', content: `hello ${NUL}` }] },
        { model: 'nul-model', messages: [{ role: 'user', content: 'hello' }], metadata: { [NUL]: 'x' } },
      ]) {
        const chat = await send('gateway', 'POST', '/v1/chat/completions', { json });
        expect(chat.status, JSON.stringify(json)).toBe(400);
      }
      expect(errorsSince(logged)).toEqual([]);
    });

    it('keeps the record of every call that reaches the proxy: control characters other than NUL in free text are stored', async () => {
      const logged = logs.lines.length;
      const unknown = await send(
        'gateway',
        'POST',
        '/v1/chat/completions',
        { json: { model: 'gpt-4o\u0001\u001b[31m', messages: [{ role: 'user', content: 'line one\n\tline two \u001b[0m' }] } },
        'record-unknown-model',
      );
      expect(unknown.status).toBe(404);
      const served = await send(
        'gateway',
        'POST',
        '/v1/chat/completions',
        { json: { model: 'nul-model', messages: [{ role: 'user', content: 'line one\n\tline two \u001b[0m' }] } },
        'record-served',
      );
      expect(served.status).toBe(200);
      const events = async (): Promise<Array<{ event_type: string; model: string }>> => {
        const sql =
          "SELECT event_type, payload->>'model' AS model FROM events WHERE event_type LIKE 'ai.request.%' AND correlation_id IN ('record-unknown-model', 'record-served') ORDER BY event_type";
        return (await blocks.platform.db.query<{ event_type: string; model: string }>(sql)).rows;
      };
      const found = await eventually(events, (rows) => rows.length >= 2);
      expect(found).toEqual([
        { event_type: 'ai.request.completed', model: 'nul-model' },
        { event_type: 'ai.request.failed', model: 'gpt-4o\u0001\u001b[31m' },
      ]);
      expect(errorsSince(logged)).toEqual([]);
    });
  });
}
