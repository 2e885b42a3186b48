/**
 * The one error type the platform knows how to answer with. Every error a client may see is a
 * `BlocksError` with a stable `code` listed in a module's catalogue and in docs/errors.md;
 * the HTTP server maps it to RFC 9457 problem+json in one place.
 */
export class BlocksError extends Error {
  readonly code: string;
  readonly status: number;
  readonly detail: string;
  /** Extra members of the problem document (e.g. which field was wrong). */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(code: string, status: number, detail: string, options?: { cause?: unknown; extensions?: Record<string, unknown> }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BlocksError';
    this.code = code;
    this.status = status;
    this.detail = detail;
    this.extensions = options?.extensions ?? {};
  }
}

export const isBlocksError = (error: unknown): error is BlocksError => error instanceof BlocksError;
