import { Client } from 'pg';
import { createPostgresDatabase } from '../../src/platform/db/postgres.ts';
import { runMigrations } from '../../src/platform/db/migrate.ts';
import { MIGRATIONS } from './registry.ts';
import { serviceUrls, uniqueName } from './services.ts';
import { templates } from './templates.ts';

export interface TestDatabase {
  readonly name: string;
  /** URL of the new database. */
  readonly url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /**
   * Every migration of the test registry applied: cloned from the run's migrated template database
   * (CREATE DATABASE … TEMPLATE, tens of milliseconds), or migrated here when there is none.
   * Default false: an empty database.
   */
  readonly migrated?: boolean;
}

const withAdmin = async <T>(work: (client: Client) => Promise<T>): Promise<T> => {
  const client = new Client({ connectionString: serviceUrls.postgres });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
};

/** The URL of database `name` on the server of `serviceUrls.postgres`. */
export const databaseUrl = (name: string): string => {
  const url = new URL(serviceUrls.postgres);
  url.pathname = `/${name}`;
  return url.toString();
};

/** Creates a database no other test run uses, on the server of `serviceUrls.postgres`: empty unless `migrated`. */
export async function createTestDatabase(prefix = 'blocks_test', options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = uniqueName(prefix);
  const template = options.migrated === true ? templates()?.postgres : undefined;
  await withAdmin((client) =>
    client.query(template === undefined ? `CREATE DATABASE "${name}"` : `CREATE DATABASE "${name}" TEMPLATE "${template}"`),
  );
  const database: TestDatabase = {
    name,
    url: databaseUrl(name),
    drop: async () => {
      await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
  if (options.migrated === true && template === undefined) {
    try {
      await migrate(database.url);
    } catch (error) {
      await database.drop();
      throw error;
    }
  }
  return database;
}

/** Applies every migration of the test registry to the database at `url`. */
export async function migrate(url: string): Promise<void> {
  const db = await createPostgresDatabase({ url, poolMax: 1 });
  try {
    await runMigrations(db, MIGRATIONS);
  } finally {
    await db.close();
  }
}

/**
 * Makes the run's migrated template database (global setup): created and migrated under `name`, then
 * marked as a template that nobody may connect to, so clones never copy a database in use.
 */
export async function createTemplateDatabase(name: string): Promise<{ drop(): Promise<void> }> {
  await withAdmin((client) => client.query(`CREATE DATABASE "${name}"`));
  const drop = async (): Promise<void> => {
    await withAdmin(async (client) => {
      await client.query(`ALTER DATABASE "${name}" WITH IS_TEMPLATE false`).catch(() => undefined);
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    });
  };
  try {
    await migrate(databaseUrl(name));
    await withAdmin((client) => client.query(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`));
  } catch (error) {
    await drop();
    throw error;
  }
  return { drop };
}
