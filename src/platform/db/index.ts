export type { Database, Listening, PoolStats, Queryable, QueryResult, Transaction, WakeUp, WakeUpHandler } from './port.ts';
export { InvalidChannelError } from './wake-ups.ts';
export { DatabaseError, NestedDatabaseUseError, SQLSTATE, isDatabaseError, isTransientDatabaseError, isUniqueViolation } from './errors.ts';
export { createPgliteDatabase, type PgliteDatabaseOptions } from './pglite.ts';
export { createPostgresDatabase, type PostgresDatabaseOptions } from './postgres.ts';
export { openDatabase, type OpenDatabaseOptions } from './open.ts';
export { MigrationError, readMigrations, runMigrations, type AppliedMigration, type Migration } from './migrate.ts';
