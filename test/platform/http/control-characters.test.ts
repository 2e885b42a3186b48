import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import type { HttpServer } from '../../../src/platform/http/create-http-server.ts';
import { testAccess, testHttpServer } from '../../support/http-access.ts';

// The kernel's rule on control characters (src/platform/http/control-characters.ts), on routes that
// say nothing about it: path and query parameters are single-line, body strings free text.
describe('control characters in requests', () => {
  let app: HttpServer;
  beforeAll(async () => {
    app = await testHttpServer((await testAccess()).access);
    const config = { scope: 'public' };
    const echo = async (request: { params: unknown; query: unknown; body: unknown }) => ({
      params: request.params,
      query: request.query,
      body: request.body ?? null,
    });
    app.get(
      '/things/:id',
      { config, schema: { params: Type.Object({ id: Type.String() }), querystring: Type.Object({ q: Type.Optional(Type.String()) }) } },
      echo,
    );
    // No params schema at all: the kernel adds one.
    app.get('/bare/:id', { config }, echo);
    app.post(
      '/things',
      {
        config,
        schema: {
          body: Type.Object({
            name: Type.String({ 'x-text': 'line' }),
            note: Type.Optional(Type.String()),
            tags: Type.Optional(Type.Array(Type.String())),
            extra: Type.Optional(Type.Unknown()),
          }),
        },
      },
      echo,
    );
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  const get = (url: string) => app.inject({ method: 'GET', url });
  const post = (payload: string) =>
    app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload });
  const errorsOf = (answer: { json: () => unknown }) => (answer.json() as { errors?: unknown[] }).errors;

  it('refuses any control character in a path parameter, declared or not, with 400 naming it', async () => {
    for (const id of ['%00', 'a%01b', 'a%09b', 'a%0Ab', 'a%7Fb', 'a%C2%85b']) {
      for (const url of [`/things/${id}`, `/bare/${id}`]) {
        const answer = await get(url);
        expect(answer.statusCode, url).toBe(400);
        expect(errorsOf(answer), url).toEqual([expect.objectContaining({ location: 'params', pointer: '/id' })]);
      }
    }
    expect((await get('/things/caf%C3%A9-%E6%A8%A1%E5%9E%8B')).json()).toMatchObject({ params: { id: 'café-模型' } });
    expect((await get('/bare/plain')).statusCode).toBe(200);
  });

  it('refuses any control character in a query parameter', async () => {
    for (const q of ['%00', 'a%0Ab', 'a%1Bb']) {
      const answer = await get(`/things/x?q=${q}`);
      expect(answer.statusCode, q).toBe(400);
      expect(errorsOf(answer), q).toEqual([expect.objectContaining({ location: 'querystring', pointer: '/q' })]);
    }
    expect((await get('/things/x?q=two%20words')).statusCode).toBe(200);
  });

  it('takes tabs, newlines and escape sequences in free text, and refuses only U+0000 there', async () => {
    const note = 'line one\n\tline two \u001b[31mred\u001b[0m \u0085';
    const accepted = await post(JSON.stringify({ name: 'n', note, tags: ['a\tb'] }));
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toMatchObject({ body: { note, tags: ['a\tb'] } });
    for (const [body, pointer] of [
      [{ name: 'n', note: 'a\u0000b' }, '/note'],
      [{ name: 'n', tags: ['ok', 'a\u0000b'] }, '/tags/1'],
    ] as const) {
      const answer = await post(JSON.stringify(body));
      expect(answer.statusCode, pointer).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
      expect(errorsOf(answer), pointer).toEqual([expect.objectContaining({ location: 'body', pointer })]);
    }
  });

  it('holds a body field marked single-line to the parameters’ rule', async () => {
    for (const name of ['a\nb', 'a\tb', 'a\u0000b']) {
      const answer = await post(JSON.stringify({ name }));
      expect(answer.statusCode, JSON.stringify(name)).toBe(400);
      expect(errorsOf(answer)).toEqual([expect.objectContaining({ location: 'body', pointer: '/name' })]);
    }
  });

  it('refuses U+0000 anywhere in a JSON body, in members the schema leaves untyped and in keys too', async () => {
    for (const [body, pointer] of [
      [{ name: 'n', extra: { deep: [{ value: 'a\u0000b' }] } }, '/extra/deep/0/value'],
      [{ name: 'n', extra: { 'a\u0000b': 1 } }, '/extra/a\u0000b'],
    ] as const) {
      const answer = await post(JSON.stringify(body));
      expect(answer.statusCode, pointer).toBe(400);
      expect(errorsOf(answer)).toEqual([expect.objectContaining({ location: 'body', pointer })]);
    }
    // An escaped backslash before "u0000" is text, not the character.
    const literal = await post('{"name":"n","extra":"\\\\u0000"}');
    expect(literal.statusCode).toBe(200);
    expect(literal.json()).toMatchObject({ body: { extra: '\\u0000' } });
  });

  it('documents the rule once (docs/security.md), not on every string: only a field that differs from its default says so', async () => {
    const document = JSON.stringify((await get('/docs/json')).json());
    expect(document.match(/"x-text"/g)).toHaveLength(1);
    expect(document).toContain('"x-text":"line"');
  });
});
