import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';

/** One direction's changes, as Kong's request-/response-transformer: remove, then rename, then add. */
export interface TransformOpsConfig {
  /** Added only when absent (Kong's `add`); never overwrites what the client or upstream sent. */
  readonly add_headers?: Readonly<Record<string, string>>;
  readonly remove_headers?: readonly string[];
  readonly rename_headers?: Readonly<Record<string, string>>;
  /** Dotted paths (`a.b.c`) into the JSON object; added only when absent, creating missing parents. */
  readonly add_json?: Readonly<Record<string, unknown>>;
  readonly remove_json?: readonly string[];
  readonly rename_json?: Readonly<Record<string, string>>;
}

/** An entry of `gateway.transforms`. */
export interface TransformConfig {
  /** `<METHOD> /path/:param/*` (whole path; `:x` one segment, a final `*` the rest; METHOD may be `*`) or a bare `/prefix`. */
  readonly route: string;
  readonly request?: TransformOpsConfig;
  readonly response?: TransformOpsConfig;
}

interface Ops {
  readonly removeHeaders: readonly string[];
  readonly renameHeaders: ReadonlyArray<readonly [string, string]>;
  readonly addHeaders: ReadonlyArray<readonly [string, string]>;
  readonly removeJson: readonly Path[];
  readonly renameJson: ReadonlyArray<readonly [Path, Path]>;
  readonly addJson: ReadonlyArray<readonly [Path, unknown]>;
  readonly touchesJson: boolean;
}

export interface Transform {
  readonly route: string;
  matches(method: string, path: string): boolean;
  readonly request?: Ops;
  readonly response?: Ops;
}

/** A dotted JSON path: the objects to walk, then the member. */
interface Path {
  readonly parents: readonly string[];
  readonly key: string;
}

/**
 * Headers no transform may name (remove, rename from or to, add): the correlation id and trace
 * context tie an answer to its logs, and the framing headers belong to the transport. Together
 * with problem documents never being rewritten, an error always reaches the client with its
 * correlation id and every problem+json field.
 */
export const PROTECTED_HEADERS: ReadonlySet<string> = new Set([
  'x-correlation-id',
  'traceparent',
  'content-length',
  'transfer-encoding',
  'connection',
  'host',
]);
const METHODS = new Set(['*', 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

/** Checks and compiles `gateway.transforms`; a bad entry throws an error naming it, so start stops. */
export function compileTransforms(configs: readonly TransformConfig[]): Transform[] {
  return configs.map((config, index) => {
    const fail = (what: string): never => {
      throw new Error(`gateway.transforms[${index}] (${config.route}): ${what}`);
    };
    const matches = compileRoute(config.route, fail);
    return {
      route: config.route,
      matches,
      ...(config.request ? { request: compileOps(config.request, (what) => fail(`request: ${what}`)) } : {}),
      ...(config.response ? { response: compileOps(config.response, (what) => fail(`response: ${what}`)) } : {}),
    };
  });
}

function compileRoute(route: string, fail: (what: string) => never): Transform['matches'] {
  const trimmed = route.trim();
  if (trimmed.startsWith('/')) {
    const prefix = trimmed.replace(/\/+$/, '');
    return (_method, path) => prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
  }
  const [method, pattern, ...rest] = trimmed.split(/\s+/);
  if (!method || !pattern || rest.length > 0) fail('route must be "<METHOD> /path" or "/prefix"');
  const upper = method.toUpperCase();
  if (!METHODS.has(upper)) fail(`unknown method ${method}`);
  if (!pattern.startsWith('/')) fail('path must start with /');
  const segments = pattern.split('/').slice(1);
  const parts = segments.map((segment, i) => {
    if (segment === '*') {
      if (i !== segments.length - 1) fail('* may only be the last segment');
      return '(?:/.*)?';
    }
    if (segment.startsWith(':')) {
      if (segment.length === 1) fail('a :parameter needs a name');
      return '/[^/]+';
    }
    if (segment.includes('*') || segment.includes(':')) fail(`segment ${segment} mixes text with * or :`);
    return `/${segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&')}`;
  });
  const regex = new RegExp(`^${parts.join('')}$`);
  return (requestMethod, path) => (upper === '*' || upper === requestMethod) && regex.test(path);
}

function compileOps(config: TransformOpsConfig, fail: (what: string) => never): Ops {
  const header = (name: string, op: string): string => {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(lower)) fail(`${op}: ${name} is not a header name`);
    if (PROTECTED_HEADERS.has(lower)) fail(`${op}: ${name} may not be changed by a transform`);
    return lower;
  };
  const path = (dotted: string, op: string): Path => {
    const segments = dotted.split('.');
    if (segments.some((s) => s === '')) fail(`${op}: ${dotted} has an empty segment`);
    if (segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) fail(`${op}: ${dotted} names a prototype member`);
    return { parents: segments.slice(0, -1), key: segments.at(-1) ?? '' };
  };
  const removeJson = (config.remove_json ?? []).map((p) => path(p, 'remove_json'));
  const renameJson = Object.entries(config.rename_json ?? {}).map(
    ([from, to]) => [path(from, 'rename_json'), path(to, 'rename_json')] as const,
  );
  const addJson = Object.entries(config.add_json ?? {}).map(([p, value]) => [path(p, 'add_json'), value] as const);
  return {
    removeHeaders: (config.remove_headers ?? []).map((h) => header(h, 'remove_headers')),
    renameHeaders: Object.entries(config.rename_headers ?? {}).map(
      ([from, to]) => [header(from, 'rename_headers'), header(to, 'rename_headers')] as const,
    ),
    addHeaders: Object.entries(config.add_headers ?? {}).map(([name, value]) => [header(name, 'add_headers'), value] as const),
    removeJson,
    renameJson,
    addJson,
    touchesJson: removeJson.length + renameJson.length + addJson.length > 0,
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The object holding the path's last segment; created along the way when `create`. */
function parentOf(root: Record<string, unknown>, path: Path, create: boolean): Record<string, unknown> | undefined {
  let node = root;
  for (const segment of path.parents) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (isObject(next)) node = next;
    else if (next === undefined && create) node = node[segment] = {};
    else return undefined;
  }
  return node;
}

/** Applies the JSON field changes to `body` in place. Only objects are walked; arrays are left alone. */
export function applyJsonOps(body: Record<string, unknown>, ops: Ops): void {
  for (const path of ops.removeJson) {
    const parent = parentOf(body, path, false);
    if (parent) Reflect.deleteProperty(parent, path.key);
  }
  for (const [from, to] of ops.renameJson) {
    const parent = parentOf(body, from, false);
    if (!parent || !Object.hasOwn(parent, from.key)) continue;
    const value = parent[from.key];
    Reflect.deleteProperty(parent, from.key);
    const target = parentOf(body, to, true);
    if (target) target[to.key] = value;
  }
  for (const [path, value] of ops.addJson) {
    const parent = parentOf(body, path, true);
    if (parent && !Object.hasOwn(parent, path.key)) parent[path.key] = structuredClone(value);
  }
}

function applyRequestHeaders(headers: IncomingHttpHeaders, ops: Ops): void {
  for (const name of ops.removeHeaders) Reflect.deleteProperty(headers, name);
  for (const [from, to] of ops.renameHeaders) {
    if (headers[from] === undefined) continue;
    headers[to] = headers[from];
    Reflect.deleteProperty(headers, from);
  }
  for (const [name, value] of ops.addHeaders) if (headers[name] === undefined) headers[name] = value;
}

function applyResponseHeaders(reply: FastifyReply, ops: Ops): void {
  for (const name of ops.removeHeaders) reply.removeHeader(name);
  for (const [from, to] of ops.renameHeaders) {
    const value = reply.getHeader(from);
    if (value === undefined) continue;
    reply.removeHeader(from);
    reply.header(to, value);
  }
  for (const [name, value] of ops.addHeaders) if (!reply.hasHeader(name)) reply.header(name, value);
}

async function payloadText(payload: unknown): Promise<string | undefined> {
  if (typeof payload === 'string') return payload;
  if (Buffer.isBuffer(payload)) return payload.toString('utf8');
  if (payload instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const chunk of payload) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
    return Buffer.concat(chunks).toString('utf8');
  }
  return undefined;
}

/**
 * Whether a response body may be rewritten: a successful, uncompressed `application/json`
 * answer. Problem documents (errors) never are, so their fields and correlation id survive.
 */
function rewritable(reply: FastifyReply): boolean {
  const type = String(reply.getHeader('content-type') ?? '');
  const encoding = String(reply.getHeader('content-encoding') ?? 'identity');
  return reply.statusCode < 400 && /^application\/json\b/i.test(type) && encoding === 'identity';
}

/**
 * Applies `transforms` to every route of the app it is registered on (the gateway): request
 * headers at onRequest, request JSON before validation (so in-process routes validate, and
 * proxied ones forward, the transformed body), response headers and JSON at onSend.
 */
export const transformsPlugin = fp<{ transforms: readonly Transform[] }>(async (app, { transforms }) => {
  if (transforms.length === 0) return;
  const matched = new WeakMap<FastifyRequest, readonly Transform[]>();
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '/';
    const hits = transforms.filter((t) => t.matches(request.method, path));
    if (hits.length === 0) return;
    matched.set(request, hits);
    for (const t of hits) if (t.request) applyRequestHeaders(request.raw.headers, t.request);
  });
  app.addHook('preValidation', async (request) => {
    for (const t of matched.get(request) ?? []) {
      if (t.request?.touchesJson && isObject(request.body)) applyJsonOps(request.body, t.request);
    }
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const responses = (matched.get(request) ?? []).flatMap((t) => (t.response ? [t.response] : []));
    if (responses.length === 0) return payload;
    for (const ops of responses) applyResponseHeaders(reply, ops);
    if (!responses.some((ops) => ops.touchesJson) || !rewritable(reply)) return payload;
    const text = await payloadText(payload);
    if (text === undefined) return payload;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON after all, whatever its content type says: pass it on untouched.
      return text;
    }
    if (!isObject(body)) return text;
    for (const ops of responses) if (ops.touchesJson) applyJsonOps(body, ops);
    return JSON.stringify(body);
  });
});
