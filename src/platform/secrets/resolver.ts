import { closeSync, constants, fstatSync, openSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve, sep } from 'node:path';
import { ENV_PATTERN, envRefusal, isWithin, SYSTEM_DIRECTORIES, type SecretBounds } from './bounds.ts';
import { SecretError } from './errors.ts';
import { parseSecretReference, type SecretReference } from './reference.ts';

/** Longest secret file read: keys are a few hundred bytes; anything larger is not one. */
export const MAX_SECRET_BYTES = 64 * 1024;

export interface SecretResolverOptions {
  readonly bounds: SecretBounds;
  /** Blocks' data directory: nothing under it is readable through a reference, whatever the bounds. */
  readonly dataDir: string;
  /** Blocks' own key files elsewhere (the TLS key): never readable either, nor any hard link to them. */
  readonly ownFiles?: readonly string[];
  /** Where `env:` references are read: the process environment in production. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads secret references within the operator's bounds. Used where a reference is written (the
 * catalog), configured (`ai.providers`) and read (when a provider adapter is built): a reference
 * stored before the bounds existed, or since narrowed, is refused when read.
 */
export interface SecretResolver {
  /**
   * Parses `ref` and checks it against the bounds, without reading the secret. A file that exists
   * is checked by its real path too (symlinks resolved); one that does not yet is judged by its path.
   * @throws SecretError SECRET_REF_INVALID, SECRET_REF_NOT_ALLOWED
   */
  check(ref: string): SecretReference;
  /**
   * The secret, trimmed: checked as by `check`, then a file is opened by its real path (no symlink
   * followed after the check), must be a regular file of at most {@link MAX_SECRET_BYTES} and not
   * one of Blocks' own key files under another name.
   * @throws SecretError SECRET_REF_INVALID, SECRET_REF_NOT_ALLOWED, or SECRET_UNAVAILABLE (unset,
   *   empty, missing or unreadable); the detail names the reference, never the secret.
   */
  read(ref: string): string;
}

/**
 * @throws Error naming the setting when the bounds cannot be meant: a pattern that is not a name,
 *   `PREFIX*` or `*SUFFIX`; a directory that is relative, the root, or where nothing may be read.
 */
export function createSecretResolver(options: SecretResolverOptions): SecretResolver {
  const dataDir = resolve(options.dataDir);
  const ownFiles = (options.ownFiles ?? []).map((file) => resolve(file));
  options.bounds.env.forEach((pattern, i) => {
    if (!ENV_PATTERN.test(pattern)) throw new Error(`secrets.env[${i}]: '${pattern}' must be a variable name, PREFIX_* or *_SUFFIX`);
  });
  const directories = options.bounds.directories.map((directory, i) => {
    const at = `secrets.directories[${i}]`;
    if (!isAbsolute(directory)) throw new Error(`${at}: '${directory}' must be an absolute path`);
    const normalised = resolve(directory);
    if (normalised === sep) throw new Error(`${at}: '/' would allow every file; name the directories holding secrets`);
    const unreadable = [dataDir, ...SYSTEM_DIRECTORIES].find((protectedDir) => isWithin(normalised, protectedDir));
    if (unreadable !== undefined) throw new Error(`${at}: '${directory}' is inside ${unreadable}, which is never readable`);
    return normalised;
  });

  /** Why `path` (absolute, normalised) may not be read, judged against `dirs`, `data` and `own` as given. */
  const fileRefusal = (path: string, allowed: readonly string[], data: string, own: readonly string[]): string | null => {
    const system = SYSTEM_DIRECTORIES.find((dir) => isWithin(path, dir));
    if (system !== undefined) return `is under ${system}, which is never readable`;
    if (isWithin(path, data)) return "is inside Blocks' data directory";
    if (own.includes(path)) return "is one of Blocks' own key files";
    if (allowed.some((dir) => isWithin(path, dir))) return null;
    return `is not under a directory secrets.directories allows (${directories.length === 0 ? 'none is allowed' : `allowed: ${directories.join(', ')}`})`;
  };
  /** The same, on the real path, against the real paths of the bounds (an allowed directory may itself be a symlink). */
  const realFileRefusal = (realPath: string): string | null =>
    fileRefusal(realPath, directories.flatMap(realOf), realOf(dataDir)[0] ?? dataDir, ownFiles.flatMap(realOf));

  const checked = (ref: string): SecretReference => {
    const reference = parseSecretReference(ref);
    const refusal =
      reference.kind === 'env' ? envRefusal(reference.name, options.bounds) : fileRefusal(reference.path, directories, dataDir, ownFiles);
    if (refusal !== null) throw notAllowed(ref, refusal);
    return reference;
  };

  const readFile = (ref: string, path: string): string => {
    let realPath: string;
    try {
      realPath = realpathSync(path);
    } catch (error) {
      throw unavailable(ref, `cannot be read (${errnoOf(error)})`, error);
    }
    const refusal = realFileRefusal(realPath);
    if (refusal !== null) throw notAllowed(ref, `resolves to a file that ${refusal}`);
    let fd: number;
    try {
      // NOFOLLOW: the real path was checked; a symlink put in its place since is not followed.
      // NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file).
      fd = openSync(realPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      throw unavailable(ref, `cannot be read (${errnoOf(error)})`, error);
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw unavailable(ref, 'is not a regular file');
      if (stat.size > MAX_SECRET_BYTES) throw unavailable(ref, `is larger than ${MAX_SECRET_BYTES} bytes`);
      // A hard link is a second name for the same file: compare the file, not the name.
      if (ownFiles.some((own) => sameFile(own, stat))) throw notAllowed(ref, "is one of Blocks' own key files under another name");
      return readFileSync(fd, 'utf8').slice(0, MAX_SECRET_BYTES).trim();
    } finally {
      closeSync(fd);
    }
  };

  return {
    check(ref) {
      const reference = checked(ref);
      if (reference.kind === 'file') {
        const realPath = realOf(reference.path)[0];
        const refusal = realPath === undefined ? null : realFileRefusal(realPath);
        if (refusal !== null) throw notAllowed(ref, `resolves to a file that ${refusal}`);
      }
      return reference;
    },
    read(ref) {
      const reference = checked(ref);
      const value = reference.kind === 'env' ? (options.env[reference.name] ?? '') : readFile(ref, reference.path);
      if (value === '') throw unavailable(ref, reference.kind === 'env' ? 'is not set' : 'is empty');
      return value;
    },
  };
}

/** The real path of `path` as a one-element list, or none when it does not exist (or cannot be resolved). */
function realOf(path: string): string[] {
  try {
    return [realpathSync(path)];
  } catch {
    return []; // a path that cannot be resolved holds no file to compare with
  }
}

function sameFile(path: string, stat: { dev: number; ino: number }): boolean {
  try {
    const own = statSync(path);
    return own.dev === stat.dev && own.ino === stat.ino;
  } catch {
    return false; // an own file that does not exist cannot be the file opened
  }
}

const errnoOf = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? 'error';

const notAllowed = (ref: string, problem: string): SecretError => new SecretError('SECRET_REF_NOT_ALLOWED', `'${ref}' ${problem}`);

const unavailable = (ref: string, problem: string, cause?: unknown): SecretError =>
  new SecretError('SECRET_UNAVAILABLE', `'${ref}' ${problem}`, cause);
