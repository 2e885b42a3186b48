import { describe, expect, it } from 'vitest';
import { createTokenizer, extractPromptText } from '../../../src/autonomous/ai-router/tokenizer.ts';

// One tokenizer for the file: loading the o200k_base ranks takes a noticeable fraction of a second.
const tokenizer = createTokenizer();
tokenizer.warmUp();

describe('countTokens (o200k_base)', () => {
  // Counts as o200k_base (GPT-4o) gives them: "Hello" "," " world" "!" and so on.
  it.each([
    ['', 0],
    ['hello world', 2],
    ['Hello, world!', 4],
    ['The quick brown fox jumps over the lazy dog.', 10],
    ['def add(a, b):\n    return a + b\n', 12],
  ])('counts %j as %i tokens', (text, expected) => {
    expect(tokenizer.countTokens(text)).toBe(expected);
  });

  it('counts special-token markers in user text as plain text instead of rejecting them', () => {
    expect(tokenizer.countTokens('<|endoftext|>')).toBe(7);
  });

  it('grows with the text', () => {
    const once = tokenizer.countTokens('The quick brown fox jumps over the lazy dog. ');
    expect(tokenizer.countTokens('The quick brown fox jumps over the lazy dog. '.repeat(100))).toBeGreaterThanOrEqual(once * 90);
  });

  it('gives a remembered text (a repeated system prompt) the count it had, and tells apart texts that differ in one character', () => {
    const prompt = 'You are a careful assistant. Answer in one paragraph and cite the clause you rely on. '.repeat(3);
    const variants = [prompt, `${prompt} Then list three open questions.`, prompt.replace('careful', 'careless'), prompt.repeat(2)];
    const fresh = variants.map((text) => createTokenizer().countTokens(text));
    expect(new Set(fresh).size).toBeGreaterThan(1);
    // Twice through one tokenizer: the second round comes from memory and must agree.
    for (let round = 0; round < 2; round++) expect(variants.map((text) => tokenizer.countTokens(text))).toEqual(fresh);
  });

  it('gives the same count from separate tokenizers', () => {
    const text = 'Summarise the attached quarterly report in three bullet points.';
    expect(createTokenizer().countTokens(text)).toBe(tokenizer.countTokens(text));
  });
});

describe('extractPromptText', () => {
  it('is empty without a context', () => {
    expect(extractPromptText(undefined)).toEqual([]);
    expect(tokenizer.countPromptTokens(undefined)).toBe(0);
  });

  it('takes prompt, each message content and input, in that order, ignoring other fields', () => {
    const context = {
      prompt: 'P',
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'U' },
      ],
      input: 'I',
      metadata: { tenant: 'acme', notes: 'a long field that is not prompt text' },
    };
    expect(extractPromptText(context)).toEqual(['P', 'S', 'U', 'I']);
  });

  it('counts non-string message content as its JSON and skips messages without content', () => {
    const parts = [
      { type: 'text', text: 'describe this' },
      { type: 'image_url', image_url: { url: 'https://x/y.png' } },
    ];
    const context = {
      messages: [
        { role: 'user', content: parts },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1' }] },
        { role: 'tool' },
        'not a message',
      ],
    };
    expect(extractPromptText(context)).toEqual([JSON.stringify(parts)]);
  });

  it('ignores prompt and input that are not strings, falling back to the JSON of the context', () => {
    const context = { prompt: 42, input: ['a', 'b'], messages: [] };
    expect(extractPromptText(context)).toEqual([JSON.stringify(context)]);
  });

  it('falls back to the JSON serialisation of the context', () => {
    const context = { document: 'Quarterly revenue rose 12%.', language: 'en' };
    expect(extractPromptText(context)).toEqual([JSON.stringify(context)]);
    expect(tokenizer.countPromptTokens(context)).toBe(tokenizer.countTokens(JSON.stringify(context)));
  });

  it('sums the tokens of the pieces', () => {
    const context = {
      prompt: 'hello world',
      messages: [{ role: 'user', content: 'Hello, world!' }],
      input: 'The quick brown fox jumps over the lazy dog.',
    };
    expect(tokenizer.countPromptTokens(context)).toBe(2 + 4 + 10);
  });
});
