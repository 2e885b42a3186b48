import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface CreateLoggerOptions {
  readonly level: string;
  /** Process role, e.g. `gateway` or `all`: on every line so merged logs stay readable. */
  readonly service: string;
  readonly version: string;
  /** Where lines go; stdout when absent. Tests pass a stream to read what was logged. */
  readonly destination?: DestinationStream;
}

/** JSON logs (pino). Request loggers add `correlation_id` and `trace_id` as child bindings. */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service, version: options.version },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'], censor: '[redacted]' },
    },
    options.destination,
  );
}
