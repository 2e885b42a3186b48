import type { Ajv, ErrorObject } from 'ajv';
import { BlocksError } from '../errors.ts';
import { httpErrors } from './errors.ts';

/**
 * Control characters in what callers send, refused at the schema for every route without the
 * route having to ask. Two kinds of string field:
 *
 * - `line`: identifiers, names and the like, where no control character means anything. Every
 *   path and query parameter is one. Refused: U+0000–U+001F, U+007F and U+0080–U+009F (Unicode's
 *   `Cc` category), tab and newline included.
 * - `text`: free text a caller passes along (a chat message, a prompt, a description). Every body
 *   string is one unless its schema says `line`. Tabs, newlines and the odd escape sequence of
 *   pasted terminal output are content there; only U+0000 is refused, which PostgreSQL cannot
 *   store in `text` or `jsonb` (it was a 500 and a lost record).
 *
 * A route marks a single-line body field with `{ 'x-text': 'line' }` in its schema (an OpenAPI
 * extension keyword, so the document stays valid). JSON bodies are also refused whole when any
 * string or key in them holds U+0000, typed by the schema or not (`jsonNulPointer`), since
 * untyped members (metadata, payloads) end up in `jsonb` too.
 */
export type TextKind = 'line' | 'text';

/** The schema keyword saying which kind a string field is. */
export const TEXT_KEYWORD = 'x-text';

const FORBIDDEN: Readonly<Record<TextKind, RegExp>> = {
  // eslint-disable-next-line no-control-regex -- control characters are what this matches
  line: /[\u0000-\u001f\u007f-\u009f]/,
  // eslint-disable-next-line no-control-regex -- as above
  text: /\u0000/,
};
const MESSAGES: Readonly<Record<TextKind, string>> = {
  line: 'must not contain control characters (U+0000-U+001F, U+007F-U+009F)',
  text: 'must not contain U+0000 (NUL)',
};

/** What Ajv calls for the keyword: false, with `errors` set, for a string that breaks it. */
interface StringCheck {
  (data: string): boolean;
  errors?: Array<Partial<ErrorObject>>;
}

/** An Ajv plugin (fastify's `ajv.plugins`) that teaches the validator the `x-text` keyword. */
export function controlCharacterKeyword(ajv: Ajv): Ajv {
  ajv.addKeyword({
    keyword: TEXT_KEYWORD,
    type: 'string',
    schemaType: 'string',
    metaSchema: { enum: ['line', 'text'] },
    errors: true,
    compile(kind: TextKind) {
      const forbidden = FORBIDDEN[kind];
      const validate: StringCheck = (data) => {
        if (!forbidden.test(data)) return true;
        validate.errors = [{ keyword: TEXT_KEYWORD, message: MESSAGES[kind], params: { kind } }];
        return false;
      };
      return validate;
    },
  });
  return ajv;
}

// Members of a JSON schema that hold schemas (or lists or maps of them) whose values a request fills.
// `not` and `if` are left alone: a restriction added under them would turn into a permission.
const SCHEMA_MEMBERS = new Set(['items', 'additionalProperties', 'contains', 'propertyNames', 'then', 'else', 'unevaluatedProperties']);
const SCHEMA_LISTS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems']);
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringType = (type: unknown): boolean => type === 'string' || (Array.isArray(type) && type.includes('string'));

/**
 * A copy of `schema` in which every string field that does not say its kind is of `kind`. The
 * original is left alone: schemas are shared between routes.
 */
export function withTextRule(schema: unknown, kind: TextKind): unknown {
  if (!isObject(schema)) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (SCHEMA_MEMBERS.has(key))
      copy[key] = Array.isArray(value) ? value.map((item) => withTextRule(item, kind)) : withTextRule(value, kind);
    else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) copy[key] = value.map((item) => withTextRule(item, kind));
    else if (SCHEMA_MAPS.has(key) && isObject(value)) {
      copy[key] = Object.fromEntries(Object.entries(value).map(([name, child]) => [name, withTextRule(child, kind)]));
    } else copy[key] = value;
  }
  if (isStringType(schema.type) && copy[TEXT_KEYWORD] === undefined) copy[TEXT_KEYWORD] = kind;
  return copy;
}

/** `schema` without the `x-text` members that merely repeat `kind`, the default where it sits (for the OpenAPI document). */
export function withoutDefaultTextRule(schema: unknown, kind: TextKind): unknown {
  if (Array.isArray(schema)) return schema.map((item) => withoutDefaultTextRule(item, kind));
  if (!isObject(schema)) return schema;
  return Object.fromEntries(
    Object.entries(schema)
      .filter(([key, value]) => !(key === TEXT_KEYWORD && value === kind))
      .map(([key, value]) => [key, withoutDefaultTextRule(value, kind)]),
  );
}

/** A params schema naming every parameter of `url` (`:name`, and `*`), for a route that declares none. */
export function paramsSchemaOf(url: string): Record<string, unknown> | undefined {
  const names = [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1] as string);
  if (url.includes('*')) names.push('*');
  if (names.length === 0) return undefined;
  return { type: 'object', properties: Object.fromEntries(names.map((name) => [name, { type: 'string' }])) };
}

/**
 * Where in a parsed JSON body a string or a key holds U+0000, as a JSON pointer; undefined when
 * none does. `text` is the body as received: when it holds no `\u0000` escape, which is the only
 * way JSON can carry the character, nothing is walked.
 */
export function jsonNulPointer(text: string, value: unknown): string | undefined {
  return text.includes('\\u0000') ? nulIn(value, '') : undefined;
}

function nulIn(value: unknown, pointer: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? pointer : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, child] of Object.entries(value)) {
    const at = `${pointer}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (key.includes('\u0000')) return at;
    const found = nulIn(child, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The refusal of a JSON body holding U+0000, in the shape schema failures have. */
export const nulInBody = (pointer: string): BlocksError =>
  new BlocksError('VALIDATION_FAILED', httpErrors.VALIDATION_FAILED.status, `Invalid body: ${pointer || '(document)'} ${MESSAGES.text}`, {
    extensions: { errors: [{ location: 'body', pointer, message: MESSAGES.text }] },
  });
