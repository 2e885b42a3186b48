import { describe, expect, it } from 'vitest';
import {
  assertConsumerName,
  assertSubject,
  assertSubjectPattern,
  compileSubjectPattern,
  subjectMatches,
} from '../../../src/platform/bus/subject-pattern.ts';

describe('subject patterns', () => {
  it.each([
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b', false],
    ['a.b.c', 'a.b.c.d', false],
    ['a.*.c', 'a.x.c', true],
    ['a.*.c', 'a.x.y.c', false],
    ['a.*', 'a', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['*.*', 'a.b', true],
    ['a.>', 'a', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c.d', true],
    ['a.>', 'ab.c', false],
    ['>', 'a', true],
    ['>', 'a.b.c', true],
    ['*.b.>', 'x.b.y', true],
    ['*.b.>', 'x.b', false],
    ['*.b.>', 'x.c.y', false],
  ])("'%s' against '%s' is %s", (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected);
  });

  it('accepts tokens of letters, digits, _ and -', () => {
    expect(() => assertSubject('ai.route-v2.decided_ok.0')).not.toThrow();
    expect(() => assertSubjectPattern('ai.*.decided.>')).not.toThrow();
  });

  it.each(['', 'a..b', '.a', 'a.', 'a.*', 'a.>', 'a b', 'a/b', 'é', 'x'.repeat(257)])('rejects the subject %j', (subject) => {
    expect(() => assertSubject(subject)).toThrow(expect.objectContaining({ code: 'BUS_INVALID_SUBJECT' }));
  });

  it.each(['', 'a.>.b', '>.a', 'a.b*', 'a.*b', 'a..*', 'a.>>', '**'])('rejects the pattern %j', (pattern) => {
    expect(() => compileSubjectPattern(pattern)).toThrow(expect.objectContaining({ code: 'BUS_INVALID_SUBJECT' }));
  });

  it.each(['', 'a.b', 'a b', 'a*', 'a>', 'ü', 'x'.repeat(65)])('rejects the consumer name %j', (name) => {
    expect(() => assertConsumerName(name)).toThrow(expect.objectContaining({ code: 'BUS_INVALID_CONSUMER' }));
  });

  it('accepts consumer names of letters, digits, _ and - up to 64 characters', () => {
    expect(() => assertConsumerName('billing_v2-eu')).not.toThrow();
    expect(() => assertConsumerName('x'.repeat(64))).not.toThrow();
  });
});
