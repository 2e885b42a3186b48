import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { CST, Composer, Lexer, LineCounter, Parser, isMap, isScalar, isSeq, type Document } from 'yaml';
import { BlocksError } from '../errors.ts';
import { contentTypeErrors } from './content-type-errors.ts';
import { jsonDepthExceeds } from './json-limits.ts';
import { jsonNulPointer, nulInBody } from './control-characters.ts';
import { httpErrors } from './errors.ts';

/**
 * A body a module's routes accept besides JSON. Registered inside the module's own plugin
 * ({@link withContentTypes}), so only its routes take it: every other route answers 415.
 */
export interface ContentTypeParser {
  /** Media types it parses (`application/yaml`), or a pattern tested against the whole `Content-Type`. */
  readonly type: string | RegExp | readonly string[];
  /** The body as text (default) or bytes. */
  readonly parseAs?: 'string' | 'buffer';
  /**
   * Largest body of this type, in bytes, where the route sets no `bodyLimit` of its own (a route's
   * limit wins); `http.body_limit_bytes` when absent. Past it: 413 BODY_TOO_LARGE.
   */
  readonly bodyLimitBytes?: number;
  /**
   * The value the route's schema then validates. Throw a BlocksError (400, naming what is wrong)
   * for a body that is not acceptable; anything else thrown is a 500.
   */
  parse(body: string | Buffer, request: FastifyRequest): unknown;
}

/** `routes` in a plugin of their own that also accepts `parsers`' types: what the kernel mounts for a module that declares them. */
export function withContentTypes(routes: FastifyPluginAsync, parsers: readonly ContentTypeParser[]): FastifyPluginAsync {
  if (parsers.length === 0) return routes;
  return async (app) => {
    for (const parser of parsers) {
      const type = typeof parser.type === 'string' || parser.type instanceof RegExp ? parser.type : [...parser.type];
      app.addContentTypeParser(
        type,
        { parseAs: parser.parseAs ?? 'string', ...(parser.bodyLimitBytes === undefined ? {} : { bodyLimit: parser.bodyLimitBytes }) },
        (request: FastifyRequest, body: string | Buffer, done: (error: Error | null, value?: unknown) => void) => {
          let value: unknown;
          try {
            value = parser.parse(body, request);
          } catch (error) {
            done(error as Error);
            return;
          }
          done(null, value);
        },
      );
    }
    await app.register(routes);
  };
}

export interface YamlOptions {
  /** Deepest nesting of mappings and sequences; 32 (as `http.json_max_depth`) by default. */
  readonly maxDepth?: number;
  /** Aliases (`*name`) a body may use; 0 refuses them; 20 by default. Expansion is bounded as well. */
  readonly maxAliases?: number;
  /** 64 KiB by default: YAML costs far more to parse than JSON of the same size. */
  readonly bodyLimitBytes?: number;
}

const yamlError = (code: keyof typeof contentTypeErrors, detail: string): BlocksError =>
  new BlocksError(code, contentTypeErrors[code].status, detail);

/**
 * `application/yaml` (and `application/x-yaml`, `text/yaml`) parsed to plain data, one document, on
 * the YAML 1.2 core schema: mappings with string keys, sequences, strings, numbers, booleans and
 * null. Refused with 400 and the reason: a syntax error (with its line and column), a duplicate
 * key, a tag (`!!binary`, `!foo`: no custom types), a `__proto__` key, a U+0000 in a string, more
 * than one document, nesting past `maxDepth` (measured on the syntax tree, before anything
 * recursive runs) and aliases past `maxAliases` or expanding too far (a "billion laughs").
 */
export function yamlContentType(options: YamlOptions = {}): ContentTypeParser {
  const maxDepth = options.maxDepth ?? 32;
  const maxAliases = options.maxAliases ?? 20;
  return {
    type: ['application/yaml', 'application/x-yaml', 'text/yaml'],
    bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
    parse(body) {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      // Depth is measured before anything recursive runs (composing a document recurses): first by
      // the lexer, which sees flow brackets and runs of `- ` exactly and costs a loop; then on the
      // syntax tree, for nesting by indentation (which needs a body quadratic in its depth).
      const tooDeep = `YAML body nests deeper than ${maxDepth} levels`;
      if (lexicalDepthExceeds(text, maxDepth)) return raise('YAML_TOO_COMPLEX', tooDeep);
      const lines = new LineCounter();
      const tokens = [...new Parser(lines.addNewLine).parse(text)];
      if (syntaxDepthExceeds(tokens, maxDepth)) return raise('YAML_TOO_COMPLEX', tooDeep);
      const documents = [...new Composer({ schema: 'core', uniqueKeys: false, stringKeys: true, merge: false }).compose(tokens)];
      if (documents.length > 1) return raise('MALFORMED_YAML', 'YAML body holds more than one document');
      const document = documents[0];
      if (document === undefined) return raise('MALFORMED_YAML', 'YAML body is empty');
      const [first] = document.errors;
      if (first !== undefined) return raise('MALFORMED_YAML', `YAML body is not valid: ${describe(first, lines)}`);
      const tag = document.warnings.find((warning) => warning.code === 'TAG_RESOLVE_FAILED');
      if (tag !== undefined) return raise('MALFORMED_YAML', `YAML body uses a tag, which is not accepted: ${describe(tag, lines)}`);
      checkKeys(document);
      let value: unknown;
      try {
        value = document.toJS({ maxAliasCount: maxAliases });
      } catch (error) {
        if (error instanceof ReferenceError) return raise('YAML_TOO_COMPLEX', `YAML body uses aliases too much (at most ${maxAliases})`);
        throw error;
      }
      checkPlainData(value);
      return value;
    },
  };
}

const raise = (code: keyof typeof contentTypeErrors, detail: string): never => {
  throw yamlError(code, detail);
};

const describe = (error: { message: string; pos: [number, number] }, lines: LineCounter): string => {
  const { line, col } = lines.linePos(error.pos[0]);
  return `${error.message.split('\n')[0] ?? error.message} (line ${line}, column ${col})`;
};

/**
 * Exact lower bounds on depth, one pass of the lexer: open flow brackets (`[[[[`), and a run of
 * `- ` or `? ` indicators at the start of a line (`- - - - x`), each of which opens a level.
 */
function lexicalDepthExceeds(text: string, limit: number): boolean {
  let flow = 0;
  let run = 0;
  let lineStart = true;
  for (const token of new Lexer().lex(text)) {
    switch (CST.tokenType(token)) {
      case 'flow-map-start':
      case 'flow-seq-start':
        if (++flow > limit) return true;
        lineStart = false;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        flow--;
        break;
      case 'newline':
        run = 0;
        lineStart = true;
        break;
      case 'seq-item-ind':
      case 'explicit-key-ind':
        if (lineStart && ++run > limit) return true;
        break;
      case 'space':
      case 'doc-mode':
      case 'byte-order-mark':
        break;
      default:
        lineStart = false;
    }
  }
  return false;
}

interface CstNode {
  readonly type?: string;
  readonly value?: unknown;
  readonly key?: unknown;
  readonly items?: ReadonlyArray<{ readonly key?: unknown; readonly value?: unknown }>;
}

/** Walks the syntax tree with a stack of its own: a 50,000-level body costs a loop, not the call stack. */
function syntaxDepthExceeds(tokens: readonly unknown[], limit: number): boolean {
  const stack: Array<[unknown, number]> = tokens.map((token) => [token, 0]);
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [token, depth] = next;
    if (typeof token !== 'object' || token === null) continue;
    const node = token as CstNode;
    if (node.type === 'document') stack.push([node.value, depth]);
    if (node.type !== 'block-map' && node.type !== 'block-seq' && node.type !== 'flow-collection') continue;
    if (depth + 1 > limit) return true;
    for (const item of node.items ?? []) {
      if (item.key) stack.push([item.key, depth + 1]);
      if (item.value) stack.push([item.value, depth + 1]);
    }
  }
  return false;
}

/** Duplicate keys and `__proto__`, per mapping, with a JSON pointer to where: one pass, a set per mapping. */
function checkKeys(document: Document): void {
  const stack: Array<[unknown, string]> = [[document.contents, '']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, pointer] = next;
    if (isSeq(node)) node.items.forEach((item, i) => stack.push([item, `${pointer}/${i}`]));
    if (!isMap(node)) continue;
    const seen = new Set<string>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const at = `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (key === '__proto__') raise('MALFORMED_YAML', `YAML body has a __proto__ key at ${at}`);
      if (seen.has(key)) raise('MALFORMED_YAML', `YAML body repeats the key at ${at}`);
      seen.add(key);
      stack.push([pair.value, at]);
    }
  }
}

/** Only what JSON could have said: another type (a `!!binary` Buffer, a date) is refused, as is U+0000 in a string. */
function checkPlainData(value: unknown): void {
  const stack: Array<[unknown, string]> = [[value, '']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, pointer] = next;
    if (item === null || typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item))) continue;
    if (typeof item === 'string') {
      if (item.includes('\u0000')) throw nulInBody(pointer);
      continue;
    }
    if (Array.isArray(item)) {
      item.forEach((child, i) => stack.push([child, `${pointer}/${i}`]));
      continue;
    }
    if (typeof item === 'object' && Object.getPrototypeOf(item) === Object.prototype) {
      for (const [key, child] of Object.entries(item)) {
        const at = `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
        if (key.includes('\u0000')) throw nulInBody(at);
        stack.push([child, at]);
      }
      continue;
    }
    raise(
      'MALFORMED_YAML',
      `YAML body has a value JSON could not carry at ${pointer || '(document)'} (only strings, finite numbers, booleans, null, mappings and sequences)`,
    );
  }
}

/** The context attributes a structured-mode CloudEvent (CloudEvents 1.0) must carry. */
const REQUIRED_ATTRIBUTES = ['specversion', 'id', 'source', 'type'] as const;

/**
 * `application/cloudevents+json` (structured mode): JSON under the kernel's rules (nesting past
 * `maxDepth` refused before parsing, no `__proto__` or `constructor.prototype` keys, no U+0000 in a
 * string), then checked to be one CloudEvent 1.0 (`specversion` 1.0; `id`, `source`, `type`
 * non-empty strings). A batch (`application/cloudevents-batch+json`) is another type, not accepted here.
 */
export function cloudEventsContentType(options: { maxDepth?: number; bodyLimitBytes?: number } = {}): ContentTypeParser {
  const maxDepth = options.maxDepth ?? 32;
  return {
    type: 'application/cloudevents+json',
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
    parse(body) {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (jsonDepthExceeds(text, maxDepth))
        throw new BlocksError('JSON_TOO_DEEP', httpErrors.JSON_TOO_DEEP.status, `JSON body nests deeper than ${maxDepth} levels`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new BlocksError('MALFORMED_JSON', httpErrors.MALFORMED_JSON.status, `Body is not valid JSON: ${(error as Error).message}`);
      }
      const poisoned = poisonedKeyIn(parsed);
      if (poisoned !== undefined)
        throw new BlocksError('MALFORMED_JSON', httpErrors.MALFORMED_JSON.status, `Body has a forbidden key at ${poisoned}`);
      const nul = jsonNulPointer(text, parsed);
      if (nul !== undefined) throw nulInBody(nul);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw cloudEventError('body must be one CloudEvent (a JSON object); a batch is application/cloudevents-batch+json');
      const event = parsed as Record<string, unknown>;
      for (const attribute of REQUIRED_ATTRIBUTES) {
        const value = event[attribute];
        if (typeof value !== 'string' || value.length === 0) throw cloudEventError(`${attribute} must be a non-empty string`);
      }
      if (event.specversion !== '1.0') throw cloudEventError(`specversion '${String(event.specversion)}' is not supported (1.0 is)`);
      return event;
    },
  };
}

/** Where `__proto__`, or `constructor` holding `prototype`, is a key (what fastify's own JSON parser refuses). */
function poisonedKeyIn(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, pointer] = next;
    if (typeof item !== 'object' || item === null) continue;
    for (const [key, child] of Object.entries(item as Record<string, unknown>)) {
      const at = `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (key === '__proto__') return at;
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) return at;
      stack.push([child, at]);
    }
  }
  return undefined;
}

const cloudEventError = (detail: string): BlocksError =>
  new BlocksError('INVALID_CLOUDEVENT', contentTypeErrors.INVALID_CLOUDEVENT.status, `Invalid CloudEvent: ${detail}`);
