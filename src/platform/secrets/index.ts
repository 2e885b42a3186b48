import { join } from 'node:path';
import { ConfigError } from '../config/load-config.ts';
import type { Config } from '../config/schema.ts';
import { createSecretResolver, type SecretResolver } from './resolver.ts';

export { ENV_PATTERN, matchesEnvPattern, type SecretBounds } from './bounds.ts';
export { isSecretError, SecretError, secretErrors, type SecretErrorCode } from './errors.ts';
export { parseSecretReference, type SecretReference } from './reference.ts';
export { createSecretResolver, MAX_SECRET_BYTES, type SecretResolver, type SecretResolverOptions } from './resolver.ts';

/**
 * The resolver the configuration describes: `secrets` for the bounds, with Blocks' data directory,
 * the key-encryption key it generates there (src/core/identity/tokens/key-encryption.ts) and the TLS
 * files out of reach whatever the bounds say.
 * @throws ConfigError naming the `secrets` setting that cannot be meant (`blocks start` prints its message alone).
 */
export function createConfiguredSecretResolver(
  config: Pick<Config, 'secrets' | 'data_dir' | 'tls'>,
  env: Readonly<Record<string, string | undefined>>,
): SecretResolver {
  const tls = config.tls === undefined ? [] : [config.tls.key, config.tls.cert];
  try {
    return createSecretResolver({
      bounds: config.secrets,
      dataDir: config.data_dir,
      ownFiles: [join(config.data_dir, 'keys', 'key-encryption.key'), ...tls],
      env,
    });
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}
