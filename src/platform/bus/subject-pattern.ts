import { busError } from './errors.ts';

/**
 * Subject and consumer-name rules shared by every adapter, so a name that works on the
 * in-process bus also works on NATS and Redis. Tokens are deliberately narrower than NATS
 * allows (`[A-Za-z0-9_-]`): subjects are also used in Redis fields and dead-letter subjects.
 */
const TOKEN = /^[A-Za-z0-9_-]+$/;
const CONSUMER = /^[A-Za-z0-9_-]+$/;
const MAX_SUBJECT_LENGTH = 256;
const MAX_CONSUMER_LENGTH = 64;

/** Matches a concrete subject against one compiled pattern. */
export type SubjectMatcher = (subject: string) => boolean;

/** Throws `BUS_INVALID_SUBJECT` unless `subject` is dot-separated `[A-Za-z0-9_-]+` tokens (no wildcards). */
export function assertSubject(subject: string): void {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
    throw busError('BUS_INVALID_SUBJECT', `Subject must be 1-${MAX_SUBJECT_LENGTH} characters.`, { subject });
  }
  for (const token of subject.split('.')) {
    if (!TOKEN.test(token)) {
      throw busError(
        'BUS_INVALID_SUBJECT',
        `Subject '${subject}' has an invalid token '${token}': tokens are [A-Za-z0-9_-]+, wildcards only in patterns.`,
        { subject },
      );
    }
  }
}

/**
 * Throws `BUS_INVALID_SUBJECT` unless `pattern` is dot-separated tokens where a token may be
 * `*` (exactly one token) and the last token may be `>` (one or more trailing tokens).
 */
export function assertSubjectPattern(pattern: string): void {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_SUBJECT_LENGTH) {
    throw busError('BUS_INVALID_SUBJECT', `Subject pattern must be 1-${MAX_SUBJECT_LENGTH} characters.`, {
      subject: pattern,
    });
  }
  const tokens = pattern.split('.');
  tokens.forEach((token, index) => {
    if (token === '*' || TOKEN.test(token)) return;
    if (token === '>' && index === tokens.length - 1) return;
    throw busError(
      'BUS_INVALID_SUBJECT',
      token === '>'
        ? `Subject pattern '${pattern}': '>' may only be the last token.`
        : `Subject pattern '${pattern}' has an invalid token '${token}'.`,
      { subject: pattern },
    );
  });
}

/** Throws `BUS_INVALID_CONSUMER` unless `name` is 1-64 characters of `[A-Za-z0-9_-]`. */
export function assertConsumerName(name: string): void {
  if (typeof name !== 'string' || name.length > MAX_CONSUMER_LENGTH || !CONSUMER.test(name)) {
    throw busError(
      'BUS_INVALID_CONSUMER',
      `Consumer name '${String(name)}' is invalid: use 1-${MAX_CONSUMER_LENGTH} characters of [A-Za-z0-9_-].`,
      { consumer: name },
    );
  }
}

/** Compiles a validated pattern into a matcher; throws like {@link assertSubjectPattern}. */
export function compileSubjectPattern(pattern: string): SubjectMatcher {
  assertSubjectPattern(pattern);
  const tokens = pattern.split('.');
  const tail = tokens[tokens.length - 1] === '>';
  const fixed = tail ? tokens.slice(0, -1) : tokens;
  return (subject) => {
    const parts = subject.split('.');
    if (tail ? parts.length <= fixed.length : parts.length !== fixed.length) return false;
    return fixed.every((token, index) => token === '*' || token === parts[index]);
  };
}

/** True when `subject` matches `pattern` (see {@link compileSubjectPattern}). */
export const subjectMatches = (pattern: string, subject: string): boolean => compileSubjectPattern(pattern)(subject);
