import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { RunningBlocks } from '../../../src/start.ts';
import { createRegistry } from '../../../src/modules.ts';
import { loadConfig } from '../../../src/platform/config/load-config.ts';
import { CONFIG_DIR, startTestBlocks, tempDir } from '../../support/blocks.ts';
import { testCredentials } from '../../support/credentials.ts';
import { exampleModule } from '../../support/example-module/index.ts';
import { intakeModule, SMALL_ROUTE_LIMIT } from '../../support/intake-module/index.ts';
import { withMigratedPglite } from '../../support/templates.ts';

const INTAKE = '/api/v1/collaborative/intake';
const registry = createRegistry([exampleModule, intakeModule]);

describe('body types a module adds: only its routes take them, each within its limit', () => {
  const dir = tempDir('blocks-content-types');
  let blocks: RunningBlocks;
  let headers: Record<string, string>;

  const post = async (path: string, contentType: string, body: string | Buffer) => {
    const answer = await fetch(`${blocks.urls.gateway as string}${path}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': contentType },
      body,
    });
    const text = await answer.text();
    return { status: answer.status, type: answer.headers.get('content-type') ?? '', body: JSON.parse(text) as Record<string, unknown> };
  };

  beforeAll(async () => {
    const config = loadConfig({
      configDir: CONFIG_DIR,
      env: { BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: withMigratedPglite(join(dir.path, 'data')) },
      sections: registry.configSections,
    });
    blocks = await startTestBlocks({ config, registry, roles: ['gateway', 'collaborative'] });
    headers = await testCredentials(blocks).headers('default', ['intake:write', 'example:write', 'example:read']);
  }, 60_000);
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it('parses YAML on the module’s route into what its schema validates', async () => {
    const answer = await post(
      `${INTAKE}/documents`,
      'application/yaml',
      'name: nightly\nsteps:\n  - fetch\n  - { call: summarise, retries: 2 }\n',
    );
    expect(answer.status).toBe(200);
    expect(answer.body.parsed).toEqual({ name: 'nightly', steps: ['fetch', { call: 'summarise', retries: 2 }] });
    // The route's schema still decides: valid YAML that misses a field is a validation failure.
    const invalid = await post(`${INTAKE}/documents`, 'application/yaml; charset=utf-8', 'title: no name\n');
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ code: 'VALIDATION_FAILED' });
    // JSON is still taken by the same route.
    expect((await post(`${INTAKE}/documents`, 'application/json', '{"name":"json"}')).body.parsed).toEqual({ name: 'json' });
  });

  it.each([
    ['a syntax error', 'name: [unclosed\n', 'MALFORMED_YAML', /line \d+/],
    ['a duplicate key', 'name: a\nname: b\n', 'MALFORMED_YAML', /repeats the key at \/name/],
    ['a tag', 'name: !!binary aGVsbG8=\n', 'MALFORMED_YAML', /(tag|JSON could not carry)/],
    ['a custom tag', 'name: !shell "rm -rf /"\n', 'MALFORMED_YAML', /tag/],
    ['a __proto__ key', 'name: x\n__proto__: { admin: true }\n', 'MALFORMED_YAML', /__proto__/],
    ['two documents', 'name: a\n---\nname: b\n', 'MALFORMED_YAML', /more than one document/],
    ['a U+0000', 'name: "a\\0b"\n', 'VALIDATION_FAILED', /\/name/],
    ['nesting past the limit', `name: x\ndeep: ${'['.repeat(17)}${']'.repeat(17)}\n`, 'YAML_TOO_COMPLEX', /deeper than 16/],
    ['block nesting past the limit', `name: x\ndeep:\n${'- '.repeat(40)}x\n`, 'YAML_TOO_COMPLEX', /deeper than 16/],
    [
      'nesting by indentation past the limit',
      `name: x\n${Array.from({ length: 20 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n')} end\n`,
      'YAML_TOO_COMPLEX',
      /deeper than 16/,
    ],
  ])('refuses %s with a 400 problem naming it', async (_case, yaml, code, detail) => {
    const answer = await post(`${INTAKE}/documents`, 'application/yaml', yaml);
    expect(answer.status).toBe(400);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(answer.body.code).toBe(code);
    expect(answer.body.detail).toMatch(detail);
  });

  it('refuses an alias bomb ("billion laughs") at once instead of expanding it', async () => {
    let bomb = 'name: x\na: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    let previous = 'a';
    for (const anchor of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) {
      bomb += `${anchor}: &${anchor} [${Array(9).fill(`*${previous}`).join(',')}]\n`;
      previous = anchor;
    }
    const started = performance.now();
    const answer = await post(`${INTAKE}/documents`, 'application/yaml', bomb);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'YAML_TOO_COMPLEX' });
    // A few aliases are ordinary YAML and stay accepted.
    const anchors = await post(`${INTAKE}/documents`, 'application/yaml', 'name: x\nbase: &b { retries: 2 }\nfirst: *b\nsecond: *b\n');
    expect(anchors.status).toBe(200);
    expect(anchors.body.parsed).toMatchObject({ first: { retries: 2 }, second: { retries: 2 } });
  });

  it('refuses deep nesting within a body limit in bounded time, not by blowing the stack', async () => {
    const started = performance.now();
    for (const deep of [`${'- '.repeat(30_000)}x\n`, `${'['.repeat(30_000)}${']'.repeat(30_000)}`, `${'? '.repeat(30_000)}x\n`]) {
      const answer = await post(`${INTAKE}/documents`, 'application/yaml', deep);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ code: 'YAML_TOO_COMPLEX' });
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('answers 415 to YAML on a route of another module', async () => {
    const notes = await post('/api/v1/collaborative/example/notes', 'application/yaml', 'title: groceries\n');
    expect(notes.status).toBe(415);
    expect(notes.type).toMatch(/^application\/problem\+json/);
    expect(notes.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    // The example module's route still takes JSON.
    expect((await post('/api/v1/collaborative/example/notes', 'application/json', '{"title":"groceries"}')).status).toBe(201);
  });

  it('applies a route’s own bodyLimit, with a 413 problem, to YAML and JSON alike', async () => {
    const fits = `name: ${'x'.repeat(SMALL_ROUTE_LIMIT - 10)}\n`;
    expect((await post(`${INTAKE}/small`, 'application/yaml', fits)).status).toBe(200);
    for (const [type, body] of [
      ['application/yaml', `name: ${'x'.repeat(SMALL_ROUTE_LIMIT)}\n`],
      ['application/json', JSON.stringify({ name: 'x'.repeat(SMALL_ROUTE_LIMIT) })],
    ] as const) {
      const answer = await post(`${INTAKE}/small`, type, body);
      expect(answer.status).toBe(413);
      expect(answer.type).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({ code: 'BODY_TOO_LARGE', status: 413 });
    }
    // The other route has no limit of its own: YAML's (64 KiB) applies, not the app's 1 MiB.
    const big = `name: x\npad: "${'y'.repeat(70 * 1024)}"\n`;
    expect((await post(`${INTAKE}/documents`, 'application/yaml', big)).status).toBe(413);
    expect((await post(`${INTAKE}/documents`, 'application/json', JSON.stringify({ name: 'x', pad: 'y'.repeat(70 * 1024) }))).status).toBe(
      200,
    );
  });

  it('takes one structured CloudEvent and refuses what is not one', async () => {
    const event = { specversion: '1.0', id: 'e-1', source: '/ci', type: 'build.finished', data: { ok: true } };
    const taken = await post(`${INTAKE}/events`, 'application/cloudevents+json', JSON.stringify(event));
    expect(taken).toMatchObject({ status: 200, body: { type: 'build.finished' } });
    for (const [body, code, detail] of [
      [JSON.stringify({ ...event, specversion: '0.3' }), 'INVALID_CLOUDEVENT', /specversion/],
      [JSON.stringify({ ...event, id: '' }), 'INVALID_CLOUDEVENT', /id must be/],
      [JSON.stringify([event]), 'INVALID_CLOUDEVENT', /batch/],
      ['{"specversion": "1.0",', 'MALFORMED_JSON', /not valid JSON/],
      [`{"specversion":"1.0","id":"x","source":"s","type":"t","data":${'['.repeat(17)}${']'.repeat(17)}}`, 'JSON_TOO_DEEP', /16/],
      ['{"specversion":"1.0","id":"x","source":"s","type":"t","__proto__":{"admin":true}}', 'MALFORMED_JSON', /__proto__/],
    ] as const) {
      const answer = await post(`${INTAKE}/events`, 'application/cloudevents+json', body);
      expect(answer.status, body).toBe(400);
      expect(answer.body.code, body).toBe(code);
      expect(answer.body.detail, body).toMatch(detail);
    }
    expect((await post('/api/v1/collaborative/example/notes', 'application/cloudevents+json', JSON.stringify(event))).status).toBe(415);
  });
});
