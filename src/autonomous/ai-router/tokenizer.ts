import { LRUCache } from 'lru-cache';
import { Tiktoken } from 'js-tiktoken/lite';
import o200k_base from 'js-tiktoken/ranks/o200k_base';

/**
 * Counts tokens with OpenAI's o200k_base encoding. For models of other providers the count is an
 * approximation, good enough to check context windows and estimate cost.
 */
export interface Tokenizer {
  /**
   * Tokens in `text`. Special-token markers such as `<|endoftext|>` are counted as the plain text
   * they are, never rejected, because they arrive in user input.
   */
  countTokens(text: string): number;
  /** Tokens of the prompt-bearing text of a route request's context; see {@link extractPromptText}. */
  countPromptTokens(context: Readonly<Record<string, unknown>> | undefined): number;
  /** Loads the rank table now (some hundreds of ms) so that the first request does not pay for it. */
  warmUp(): void;
}

/**
 * The prompt-bearing text of a route request's `context`, as the pieces whose tokens are summed:
 *
 * - no context: nothing (0 tokens);
 * - otherwise these, when present: `context.prompt` if it is a string; for each element of the
 *   list `context.messages`, its `content` if a string, or the JSON of `content` if it is any other
 *   non-null value (e.g. a list of content parts), so that structured content is over- rather than
 *   under-counted; `context.input` if it is a string;
 * - if none of these is present, the JSON serialisation of the whole context.
 *
 * Per-message framing tokens (roles, separators) are not counted. `context` must be
 * JSON-serialisable, which it is when it came from a request body.
 */
export function extractPromptText(context: Readonly<Record<string, unknown>> | undefined): string[] {
  if (context === undefined) return [];
  const pieces: string[] = [];
  if (typeof context.prompt === 'string') pieces.push(context.prompt);
  if (Array.isArray(context.messages)) {
    for (const message of context.messages as unknown[]) {
      if (typeof message !== 'object' || message === null || !('content' in message)) continue;
      const content = message.content;
      if (typeof content === 'string') pieces.push(content);
      else if (content !== undefined && content !== null) pieces.push(JSON.stringify(content));
    }
  }
  if (typeof context.input === 'string') pieces.push(context.input);
  if (pieces.length === 0) pieces.push(JSON.stringify(context));
  return pieces;
}

const MEMO_MIN_CHARS = 64;
const MEMO_MAX_CHARS = 100_000;

/**
 * Creates a tokenizer over js-tiktoken's lite build and the o200k_base ranks (offline). The rank
 * table is parsed once per tokenizer, on first use or on {@link Tokenizer.warmUp}: make one at
 * start-up and share it, never one per request.
 */
export function createTokenizer(): Tokenizer {
  let encoder: Tiktoken | undefined;
  const load = (): Tiktoken => (encoder ??= new Tiktoken(o200k_base));
  // Empty allowed and disallowed lists: special-token text is encoded as ordinary text.
  const noSpecial: string[] = [];
  const encode = (text: string): number => load().encode(text, noSpecial, noSpecial).length;
  // System prompts, tool descriptions and few-shot examples come back with every call of an
  // application: their counts are remembered (bounded by total characters), while short or one-off
  // text is cheaper to encode than to look up.
  const remembered = new LRUCache<string, number>({ maxSize: 4_000_000, sizeCalculation: (_count, text) => text.length });
  const countTokens = (text: string): number => {
    if (text.length < MEMO_MIN_CHARS || text.length > MEMO_MAX_CHARS) return text === '' ? 0 : encode(text);
    let count = remembered.get(text);
    if (count === undefined) {
      count = encode(text);
      remembered.set(text, count);
    }
    return count;
  };
  return {
    countTokens,
    countPromptTokens(context) {
      let total = 0;
      for (const piece of extractPromptText(context)) total += countTokens(piece);
      return total;
    },
    warmUp() {
      load();
    },
  };
}
