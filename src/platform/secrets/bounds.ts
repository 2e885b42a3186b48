import { sep } from 'node:path';

/** `secrets` in the configuration: what a secret reference may name. */
export interface SecretBounds {
  /** Variables `env:` references may name: exact names, `PREFIX_*` or `*_SUFFIX`. */
  readonly env: readonly string[];
  /** Absolute directories `file:` references may point into (after `..` and symlinks are resolved). */
  readonly directories: readonly string[];
}

/** A pattern of `secrets.env`: an exact name, `PREFIX*` or `*SUFFIX`, the fixed part a name fragment. */
export const ENV_PATTERN = /^(?:[A-Za-z_][A-Za-z0-9_]*\*?|\*[A-Za-z0-9_]+)$/;

/**
 * Variables Blocks reads for its own configuration and that carry credentials: never readable
 * through a reference, whatever `secrets.env` says (`*_KEY` would otherwise reach the key-encryption key).
 */
const OWN_VARIABLES = new Set(['BLOCKS_KEY_ENCRYPTION_KEY', 'DATABASE_URL', 'REDIS_URL', 'NATS_URL']);
/** `BLOCKS__section__key` sets any configuration key (load-config.ts), `auth.key_encryption_key` among them. */
const OWN_VARIABLE_PREFIX = 'BLOCKS__';

/**
 * Kernel file systems: /proc/self/environ holds every variable (around `secrets.env`), /proc/self/mem
 * the process's memory, /dev and /sys devices. Never readable, even under an allowed directory.
 */
export const SYSTEM_DIRECTORIES: readonly string[] = ['/proc', '/sys', '/dev'];

/** Why a variable may not be named (to follow the reference in a message), or null. */
export function envRefusal(name: string, bounds: SecretBounds): string | null {
  if (OWN_VARIABLES.has(name) || name.startsWith(OWN_VARIABLE_PREFIX)) return "is a variable of Blocks' own configuration";
  if (bounds.env.some((pattern) => matchesEnvPattern(name, pattern))) return null;
  const allowed = bounds.env.length === 0 ? 'none is allowed' : `allowed: ${bounds.env.join(', ')}`;
  return `is not a variable secrets.env allows (${allowed})`;
}

/** Case-sensitive, as variable names are: `*` stands for any run of characters at one end only. */
export function matchesEnvPattern(name: string, pattern: string): boolean {
  if (!ENV_PATTERN.test(pattern)) return false;
  if (pattern.startsWith('*')) return name.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return name === pattern;
}

/** Whether `path` is `directory` or lies under it; both absolute and normalised. */
export function isWithin(path: string, directory: string): boolean {
  if (directory === sep) return true;
  return path === directory || path.startsWith(directory.endsWith(sep) ? directory : `${directory}${sep}`);
}
