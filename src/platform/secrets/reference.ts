import { isAbsolute, resolve } from 'node:path';
import { SecretError } from './errors.ts';

/** Where a secret lives: a variable of the process environment, or a file. */
export type SecretReference = { readonly kind: 'env'; readonly name: string } | { readonly kind: 'file'; readonly path: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_REFERENCE_LENGTH = 1024;

/**
 * Parses `env:NAME` or `file:/absolute/path`. A file path is normalised (`..` and `.` resolved);
 * a relative path is refused rather than resolved against a working directory nobody chose.
 * @throws SecretError SECRET_REF_INVALID
 */
export function parseSecretReference(ref: string): SecretReference {
  if (ref.length > MAX_REFERENCE_LENGTH) throw invalid(`${ref.slice(0, 40)}…`, `is longer than ${MAX_REFERENCE_LENGTH} characters`);
  if (ref.startsWith('env:')) {
    const name = ref.slice('env:'.length);
    if (!ENV_NAME.test(name)) throw invalid(ref, 'must name a variable: letters, digits and _, not starting with a digit');
    return { kind: 'env', name };
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice('file:'.length);
    // A NUL ends the path the kernel sees: what was checked would not be what is opened.
    if (path.includes('\0')) throw invalid(ref, 'must not contain a NUL character');
    if (!isAbsolute(path)) throw invalid(ref, 'must be an absolute path (file:/run/secrets/name)');
    return { kind: 'file', path: resolve(path) };
  }
  throw invalid(ref, 'must be env:NAME or file:/absolute/path');
}

const invalid = (ref: string, problem: string): SecretError => new SecretError('SECRET_REF_INVALID', `'${ref}' ${problem}`);
