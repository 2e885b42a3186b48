import { Client } from 'pg';
import type { Logger } from '../logger.ts';
import { createOneAtATime } from '../one-at-a-time.ts';
import { toDatabaseError } from './errors.ts';
import { createWakeUpHub, reportWakeUpError, type Listening, type WakeUpHandler } from './wake-ups.ts';

export interface PostgresListenerOptions {
  readonly url: string;
  readonly connectionTimeoutMs: number;
  /** First wait before reopening a dropped connection; doubled per failed attempt. Default 100. */
  readonly reconnectMinMs?: number | undefined;
  /** Longest wait between attempts to reopen it. Default 5 000. */
  readonly reconnectMaxMs?: number | undefined;
  readonly logger?: Pick<Logger, 'warn'> | undefined;
}

/** `application_name` of the listening connection. */
export const LISTENER_APPLICATION_NAME = 'blocks-listener';

/** The LISTEN side of one PostgreSQL database handle. */
export interface PostgresListener {
  listen(channel: string, handler: WakeUpHandler): Promise<Listening>;
  close(): Promise<void>;
}

/**
 * One dedicated connection (not a pool's: a pooled connection is handed to other work and its
 * LISTENs would go with it), opened on the first `listen` and shared by every handler. When it drops
 * (the server restarted, an administrator terminated it) it is reopened with backoff, every channel is
 * listened to again, and every handler then runs once marked `missed`. Channels are validated as
 * plain identifiers before they reach SQL.
 */
export function createPostgresListener(options: PostgresListenerOptions): PostgresListener {
  const minMs = options.reconnectMinMs ?? 100;
  const maxMs = options.reconnectMaxMs ?? 5_000;
  let client: Client | undefined;
  let connecting: Promise<Client> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let failedAttempts = 0;
  let closed = false;

  const hub = createWakeUpHub({
    subscribe: async (channel) => {
      const connection = await connected();
      await run(connection, `LISTEN ${channel}`);
    },
    unsubscribe: async (channel) => {
      if (client !== undefined) await run(client, `UNLISTEN ${channel}`);
    },
    onError: reportWakeUpError(options.logger),
  });

  // One statement at a time on the connection: a LISTEN of a new handler can meet the re-LISTENs of a reconnect.
  const serial = createOneAtATime();
  const run = (connection: Client, sql: string): Promise<void> =>
    serial(async () => {
      try {
        await connection.query(sql);
      } catch (error) {
        throw toDatabaseError(error);
      }
    });

  const scheduleReconnect = (): void => {
    if (closed || retryTimer !== undefined || hub.channels().length === 0) return;
    const delay = Math.min(minMs * 2 ** failedAttempts, maxMs);
    failedAttempts += 1;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connected().then(
        () => {
          failedAttempts = 0;
          // Whatever was notified while the connection was down is lost: everyone re-checks.
          hub.deliverMissed();
        },
        (error: unknown) => {
          options.logger?.warn({ err: error, attempt: failedAttempts }, 'database listener could not reconnect; will retry');
          scheduleReconnect();
        },
      );
    }, delay);
    retryTimer.unref();
  };

  const lost = (connection: Client, error?: Error): void => {
    if (client !== connection) return;
    client = undefined;
    connection.removeAllListeners('notification');
    // ending a client whose socket already died resolves at once; its own errors are no longer news.
    connection.on('error', () => undefined);
    void connection.end().catch(() => undefined);
    if (closed) return;
    options.logger?.warn({ err: error }, 'database listener connection lost; reconnecting');
    scheduleReconnect();
  };

  const open = async (): Promise<Client> => {
    const connection = new Client({
      connectionString: options.url,
      connectionTimeoutMillis: options.connectionTimeoutMs,
      keepAlive: true,
      // Named, so an operator (and a test) can tell it from the pool's connections in pg_stat_activity.
      application_name: LISTENER_APPLICATION_NAME,
    });
    connection.on('notification', (message) => hub.deliver(message.channel, message.payload ?? ''));
    // Without an 'error' listener a dropped connection would crash the process.
    connection.on('error', (error) => lost(connection, error));
    connection.on('end', () => lost(connection));
    try {
      await connection.connect();
      client = connection;
      for (const channel of hub.channels()) await run(connection, `LISTEN ${channel}`);
      if (closed) throw new Error('the database is closed');
      return connection;
    } catch (error) {
      if (client === connection) client = undefined;
      connection.removeAllListeners();
      connection.on('error', () => undefined);
      await connection.end().catch(() => undefined);
      throw toDatabaseError(error);
    }
  };

  const connected = (): Promise<Client> => {
    if (closed) return Promise.reject(new Error('the database is closed'));
    if (client !== undefined) return Promise.resolve(client);
    connecting ??= open().finally(() => (connecting = undefined));
    return connecting;
  };

  return {
    listen: (channel, handler) => hub.listen(channel, handler),
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      hub.stopAll();
      await connecting?.catch(() => undefined);
      const connection = client;
      client = undefined;
      if (connection !== undefined) {
        connection.removeAllListeners();
        connection.on('error', () => undefined);
        await connection.end().catch(() => undefined);
      }
    },
  };
}
