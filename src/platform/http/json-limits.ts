import type { FastifyBodyParser } from 'fastify';
import { BlocksError } from '../errors.ts';
import { httpErrors } from './errors.ts';
import { jsonNulPointer, nulInBody } from './control-characters.ts';

/**
 * How deeply `text` nests arrays and objects, counted by one pass over the characters: no parse
 * and no recursion, so a 100k-deep document costs a loop, not the stack. Brackets inside strings
 * do not count. Stops counting once `limit` is passed.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Wraps fastify's own JSON parser (same proto-poisoning protection, same errors) in the checks
 * every JSON body passes: its depth, before anything walks it, since schema validation,
 * serialisation and logging all recurse; then no U+0000 in any string or key (see
 * control-characters.ts), typed by the route's schema or not.
 */
export function checkedJsonParser(parse: FastifyBodyParser<string>, maxDepth: number): FastifyBodyParser<string> {
  return (request, body, done) => {
    if (jsonDepthExceeds(body, maxDepth)) {
      const { status } = httpErrors.JSON_TOO_DEEP;
      done(new BlocksError('JSON_TOO_DEEP', status, `JSON body nests deeper than ${maxDepth} levels (http.json_max_depth)`), undefined);
      return;
    }
    void parse(request, body, (error, value) => {
      const nul = error ? undefined : jsonNulPointer(body, value);
      if (nul !== undefined) done(nulInBody(nul), undefined);
      else done(error, value);
    });
  };
}
