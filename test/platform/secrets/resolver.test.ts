import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createConfiguredSecretResolver,
  createSecretResolver,
  isSecretError,
  MAX_SECRET_BYTES,
  matchesEnvPattern,
  parseSecretReference,
  type SecretErrorCode,
  type SecretResolver,
} from '../../../src/platform/secrets/index.ts';
import { ConfigError } from '../../../src/platform/config/load-config.ts';
import { tempDir, testConfig } from '../../support/blocks.ts';
import { AI_CONFIG_SECTION } from '../../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../../src/platform/config/section.ts';

/** The code of the SecretError `run` throws (and that its detail never holds `secret`). */
function codeOf(run: () => unknown, secret?: string): SecretErrorCode {
  try {
    run();
  } catch (error) {
    if (!isSecretError(error)) throw error;
    if (secret !== undefined) expect(error.detail).not.toContain(secret);
    return error.code;
  }
  throw new Error('expected a SecretError, got none');
}

const root = tempDir('blocks-secrets');
afterAll(() => root.remove());
/** Layout: secrets/ (allowed), data/ (Blocks' data dir, with its generated key), elsewhere/, tls/ (key inside secrets/). */
const secretsDir = join(root.path, 'secrets');
const dataDir = join(root.path, 'data');
const elsewhere = join(root.path, 'elsewhere');
for (const dir of [secretsDir, join(dataDir, 'keys'), elsewhere]) mkdirSync(dir, { recursive: true });
const keyFile = join(dataDir, 'keys', 'key-encryption.key');
writeFileSync(keyFile, 'THE-KEY-ENCRYPTION-KEY\n');
writeFileSync(join(secretsDir, 'openai'), '  sk-openai-value \n');
writeFileSync(join(elsewhere, 'private'), 'elsewhere-value');
const tlsKey = join(secretsDir, 'tls.key');
writeFileSync(tlsKey, 'TLS-PRIVATE-KEY');

const env = {
  OPENAI_API_KEY: 'sk-env-value',
  BLOCKS_SECRET_EU: 'eu-value',
  PATH: '/usr/bin:/bin',
  EMPTY_API_KEY: '',
  BLOCKS_KEY_ENCRYPTION_KEY: 'kek-value',
  BLOCKS__auth__key_encryption_key: 'kek-by-config-value',
  DATABASE_URL: 'postgres://user:password@db/blocks',
};
const resolver = (directories: string[] = [secretsDir], patterns = ['*_API_KEY', 'BLOCKS_SECRET_*', 'EXACT_NAME']): SecretResolver =>
  createSecretResolver({ bounds: { env: patterns, directories }, dataDir, ownFiles: [keyFile, tlsKey], env });

describe('parseSecretReference', () => {
  it('reads env:NAME and file:/absolute/path, normalising the path', () => {
    expect(parseSecretReference('env:OPENAI_API_KEY')).toEqual({ kind: 'env', name: 'OPENAI_API_KEY' });
    expect(parseSecretReference('file:/run/secrets/./a/../key')).toEqual({ kind: 'file', path: '/run/secrets/key' });
  });

  it.each([
    ['vault:secret/x', /env:NAME or file:/],
    ['env:', /must name a variable/],
    ['env:1ABC', /must name a variable/],
    ['env:A-B', /must name a variable/],
    ['env:PATH ', /must name a variable/],
    ['file:run/secrets/key', /absolute path/],
    ['file:./key', /absolute path/],
    ['file:', /absolute path/],
    ['file:/run/secrets/key\0.txt', /NUL/],
    [`file:/${'a'.repeat(2000)}`, /longer than/],
  ])('refuses %s as SECRET_REF_INVALID', (ref, detail) => {
    expect(() => parseSecretReference(ref)).toThrow(detail);
    expect(codeOf(() => parseSecretReference(ref))).toBe('SECRET_REF_INVALID');
  });
});

describe('env: references', () => {
  it('match exact names, PREFIX_* and *_SUFFIX, case-sensitively, and nothing else', () => {
    expect(matchesEnvPattern('OPENAI_API_KEY', '*_API_KEY')).toBe(true);
    expect(matchesEnvPattern('openai_api_key', '*_API_KEY')).toBe(false);
    expect(matchesEnvPattern('BLOCKS_SECRET_EU', 'BLOCKS_SECRET_*')).toBe(true);
    expect(matchesEnvPattern('EXACT_NAME', 'EXACT_NAME')).toBe(true);
    expect(matchesEnvPattern('EXACT_NAMES', 'EXACT_NAME')).toBe(false);
    for (const pattern of ['*', '**', 'A*B', '*A*', 'A.*', '']) expect(matchesEnvPattern('AB', pattern), pattern).toBe(false);
  });

  it('read a variable the bounds allow', () => {
    expect(resolver().read('env:OPENAI_API_KEY')).toBe('sk-env-value');
    expect(resolver().read('env:BLOCKS_SECRET_EU')).toBe('eu-value');
  });

  it('refuse one outside the bounds, naming the allowed patterns and never the value', () => {
    expect(codeOf(() => resolver().read('env:PATH'), env.PATH)).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => resolver().check('env:PATH')).toThrow(
      /'env:PATH' is not a variable secrets.env allows \(allowed: \*_API_KEY, BLOCKS_SECRET_\*, EXACT_NAME\)/,
    );
    expect(() => resolver([secretsDir], []).check('env:OPENAI_API_KEY')).toThrow(/none is allowed/);
  });

  it("refuse Blocks' own variables whatever the bounds say", () => {
    const wide = resolver([secretsDir], ['*_KEY', 'BLOCKS_*', 'DATABASE_URL']);
    for (const [name, value] of [
      ['BLOCKS_KEY_ENCRYPTION_KEY', env.BLOCKS_KEY_ENCRYPTION_KEY],
      ['BLOCKS__auth__key_encryption_key', env.BLOCKS__auth__key_encryption_key],
      ['DATABASE_URL', env.DATABASE_URL],
    ]) {
      expect(
        codeOf(() => wide.read(`env:${name}`), value),
        name,
      ).toBe('SECRET_REF_NOT_ALLOWED');
      expect(() => wide.check(`env:${name}`)).toThrow(/Blocks' own configuration/);
    }
  });

  it('report an unset or empty variable as SECRET_UNAVAILABLE when read, and pass it when only checked', () => {
    expect(codeOf(() => resolver().read('env:MISSING_API_KEY'))).toBe('SECRET_UNAVAILABLE');
    expect(codeOf(() => resolver().read('env:EMPTY_API_KEY'))).toBe('SECRET_UNAVAILABLE');
    expect(() => resolver().read('env:MISSING_API_KEY')).toThrow(/'env:MISSING_API_KEY' is not set/);
    expect(resolver().check('env:MISSING_API_KEY')).toEqual({ kind: 'env', name: 'MISSING_API_KEY' });
  });
});

describe('file: references', () => {
  it('read a file under an allowed directory, trimmed', () => {
    expect(resolver().read(`file:${secretsDir}/openai`)).toBe('sk-openai-value');
  });

  it('refuse a file outside the allowed directories, and a way out by ..', () => {
    const outside = `file:${elsewhere}/private`;
    expect(codeOf(() => resolver().read(outside), 'elsewhere-value')).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => resolver().check(outside)).toThrow(/is not under a directory secrets.directories allows/);
    expect(codeOf(() => resolver().read(`file:${secretsDir}/../elsewhere/private`), 'elsewhere-value')).toBe('SECRET_REF_NOT_ALLOWED');
    // A sibling whose name starts like the allowed directory is not inside it.
    mkdirSync(`${secretsDir}-evil`, { recursive: true });
    writeFileSync(`${secretsDir}-evil/key`, 'evil-value');
    expect(codeOf(() => resolver().read(`file:${secretsDir}-evil/key`), 'evil-value')).toBe('SECRET_REF_NOT_ALLOWED');
  });

  it('refuse a symlink under an allowed directory that leads outside it, when written and when read', () => {
    symlinkSync(join(elsewhere, 'private'), join(secretsDir, 'link-out'));
    symlinkSync(elsewhere, join(secretsDir, 'dir-out'));
    for (const ref of [`file:${secretsDir}/link-out`, `file:${secretsDir}/dir-out/private`]) {
      expect(
        codeOf(() => resolver().check(ref)),
        ref,
      ).toBe('SECRET_REF_NOT_ALLOWED');
      expect(
        codeOf(() => resolver().read(ref), 'elsewhere-value'),
        ref,
      ).toBe('SECRET_REF_NOT_ALLOWED');
      expect(() => resolver().read(ref)).toThrow(/resolves to a file that is not under/);
    }
  });

  it("refuse Blocks' data directory and key files even when an allowed directory holds them", () => {
    // The operator allowed the directory that holds the data directory and the TLS key: a misconfiguration.
    const wide = resolver([root.path]);
    const kek = 'THE-KEY-ENCRYPTION-KEY';
    expect(codeOf(() => wide.read(`file:${keyFile}`), kek)).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => wide.check(`file:${keyFile}`)).toThrow(/inside Blocks' data directory/);
    expect(codeOf(() => wide.read(`file:${dataDir}/anything-else`))).toBe('SECRET_REF_NOT_ALLOWED');
    expect(codeOf(() => wide.read(`file:${tlsKey}`), 'TLS-PRIVATE-KEY')).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => wide.check(`file:${tlsKey}`)).toThrow(/one of Blocks' own key files/);
    // A symlink to the key, and a hard link to it (a second name for the same file), in an allowed directory.
    symlinkSync(keyFile, join(secretsDir, 'kek-symlink'));
    linkSync(keyFile, join(secretsDir, 'kek-hardlink'));
    expect(codeOf(() => resolver().read(`file:${secretsDir}/kek-symlink`), kek)).toBe('SECRET_REF_NOT_ALLOWED');
    expect(codeOf(() => resolver().read(`file:${secretsDir}/kek-hardlink`), kek)).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => resolver().read(`file:${secretsDir}/kek-hardlink`)).toThrow(/own key files under another name/);
  });

  it('refuse the data directory named relative to the working directory as well', () => {
    const relativeData = createSecretResolver({
      bounds: { env: [], directories: [root.path] },
      dataDir: relative(process.cwd(), dataDir),
      env: {},
    });
    expect(codeOf(() => relativeData.read(`file:${keyFile}`), 'THE-KEY-ENCRYPTION-KEY')).toBe('SECRET_REF_NOT_ALLOWED');
  });

  it('refuse /proc (the process environment and memory), /sys and /dev, through a symlink too', () => {
    symlinkSync('/proc/self/environ', join(secretsDir, 'environ'));
    expect(codeOf(() => resolver().read(`file:${secretsDir}/environ`), env.PATH)).toBe('SECRET_REF_NOT_ALLOWED');
    expect(() => resolver().read(`file:${secretsDir}/environ`)).toThrow(/under \/proc/);
  });

  it('follow an allowed directory that is itself a symlink', () => {
    const linked = join(root.path, 'linked-secrets');
    symlinkSync(secretsDir, linked);
    expect(resolver([linked]).read(`file:${linked}/openai`)).toBe('sk-openai-value');
  });

  it('report what cannot be read as SECRET_UNAVAILABLE: missing, a directory, a FIFO (without waiting for a writer), empty, too large', () => {
    mkdirSync(join(secretsDir, 'a-directory'));
    execFileSync('mkfifo', [join(secretsDir, 'fifo')]);
    writeFileSync(join(secretsDir, 'empty'), '\n');
    writeFileSync(join(secretsDir, 'large'), 'x'.repeat(MAX_SECRET_BYTES + 1));
    expect(() => resolver().read(`file:${secretsDir}/missing`)).toThrow(/cannot be read \(ENOENT\)/);
    expect(() => resolver().read(`file:${secretsDir}/a-directory`)).toThrow(/not a regular file/);
    expect(() => resolver().read(`file:${secretsDir}/fifo`)).toThrow(/not a regular file/);
    expect(() => resolver().read(`file:${secretsDir}/empty`)).toThrow(/is empty/);
    expect(() => resolver().read(`file:${secretsDir}/large`)).toThrow(/larger than 65536 bytes/);
    for (const name of ['missing', 'a-directory', 'fifo', 'empty', 'large'])
      expect(
        codeOf(() => resolver().read(`file:${secretsDir}/${name}`)),
        name,
      ).toBe('SECRET_UNAVAILABLE');
    // Checked when written: a file that does not exist yet is judged by its path.
    expect(resolver().check(`file:${secretsDir}/missing`)).toEqual({ kind: 'file', path: `${secretsDir}/missing` });
  });
});

describe('bounds that cannot be meant', () => {
  it.each([
    [{ env: ['*'], directories: [] }, /secrets.env\[0\]: '\*' must be a variable name/],
    [{ env: ['OK', 'A*B'], directories: [] }, /secrets.env\[1\]/],
    [{ env: [], directories: ['run/secrets'] }, /secrets.directories\[0\]: 'run\/secrets' must be an absolute path/],
    [{ env: [], directories: ['/'] }, /'\/' would allow every file/],
    [{ env: [], directories: ['/run/secrets', '/proc/self'] }, /secrets.directories\[1\]: '\/proc\/self' is inside \/proc/],
    [{ env: [], directories: [join(dataDir, 'keys')] }, /is inside .*data, which is never readable/],
  ])('are refused when the resolver is made: %j', (bounds, message) => {
    expect(() => createSecretResolver({ bounds, dataDir, env: {} })).toThrow(message);
  });
});

describe('createConfiguredSecretResolver', () => {
  it('takes the bounds from secrets and keeps the data directory, the generated key and the TLS files out of reach', () => {
    const config = testConfig({ BLOCKS_DATA_DIR: dataDir }, { secrets: { env: ['*_API_KEY'], directories: [root.path] } });
    const configured = createConfiguredSecretResolver({ ...config, tls: { cert: join(secretsDir, 'openai'), key: tlsKey } }, env);
    expect(configured.read('env:OPENAI_API_KEY')).toBe('sk-env-value');
    expect(codeOf(() => configured.read(`file:${keyFile}`))).toBe('SECRET_REF_NOT_ALLOWED');
    expect(codeOf(() => configured.read(`file:${tlsKey}`))).toBe('SECRET_REF_NOT_ALLOWED');
    expect(codeOf(() => configured.read(`file:${secretsDir}/openai`))).toBe('SECRET_REF_NOT_ALLOWED');
    expect(configured.read(`file:${elsewhere}/private`)).toBe('elsewhere-value');
  });

  it('has defaults that keep the shipped provider references working: *_API_KEY, BLOCKS_SECRET_* and /run/secrets', () => {
    const config = testConfig();
    expect(config.secrets).toEqual({ env: ['*_API_KEY', 'BLOCKS_SECRET_*'], directories: ['/run/secrets'] });
    const configured = createConfiguredSecretResolver(config, {});
    for (const provider of Object.values(sectionOf(config, AI_CONFIG_SECTION).providers)) {
      if (provider.credentials_ref !== undefined) expect(() => configured.check(provider.credentials_ref as string)).not.toThrow();
    }
    expect(() => configured.check('file:/run/secrets/openai')).not.toThrow();
  });

  it('refuses bounds that cannot be meant with a ConfigError naming the setting', () => {
    const config = testConfig({ BLOCKS_DATA_DIR: dataDir }, { secrets: { env: [], directories: [join(dataDir, 'keys')] } });
    expect(() => createConfiguredSecretResolver(config, {})).toThrow(ConfigError);
    expect(() => createConfiguredSecretResolver(config, {})).toThrow(
      /^secrets.directories\[0\]: '.*keys' is inside .*, which is never readable$/,
    );
  });

  it('refuses a pattern of secrets.env the schema does not allow, naming it', () => {
    expect(() => testConfig({}, { secrets: { env: ['*'], directories: [] } })).toThrow(/secrets\.env\.0/);
    expect(() => testConfig({}, { secrets: { env: [], directories: ['relative'] } })).toThrow(/secrets\.directories\.0/);
  });
});
