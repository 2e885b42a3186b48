import type { Logger } from '../logger.ts';
import type { Database } from './port.ts';
import { createPgliteDatabase } from './pglite.ts';
import { createPostgresDatabase } from './postgres.ts';

export interface OpenDatabaseOptions {
  /** A PostgreSQL URL (`DATABASE_URL`). When absent the embedded PGlite database is used. */
  readonly url?: string | undefined;
  /** PGlite's data directory; `'memory://'` or absent keeps the data in memory. Ignored when `url` is set. */
  readonly dataDir?: string | undefined;
  /** PostgreSQL pool size. */
  readonly poolMax?: number | undefined;
  readonly logger?: Pick<Logger, 'warn'>;
}

/** PostgreSQL when a URL is configured, otherwise PGlite: the same port, the same SQL either way. */
export function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url !== undefined && options.url !== '') {
    return createPostgresDatabase({
      url: options.url,
      ...(options.poolMax === undefined ? {} : { poolMax: options.poolMax }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }
  return createPgliteDatabase({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
}
