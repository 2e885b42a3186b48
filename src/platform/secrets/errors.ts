import { BlocksError } from '../errors.ts';
import { defineErrors } from '../define-errors.ts';

/**
 * Codes of secret references (`env:NAME`, `file:/path`). A capability that takes a reference from
 * a caller reports these under its own field (the catalog answers `INVALID_MODEL` naming
 * `credentials_ref`); they reach logs and start-up messages as they are.
 */
export const secretErrors = defineErrors(import.meta.url, {
  SECRET_REF_INVALID: { status: 400, title: 'Secret reference is not valid' },
  SECRET_REF_NOT_ALLOWED: { status: 400, title: "Secret reference is outside the operator's bounds" },
  SECRET_UNAVAILABLE: { status: 502, title: 'Referenced secret cannot be read' },
});

export type SecretErrorCode = keyof typeof secretErrors;

/** A refused or unreadable reference. Its detail names the reference, never the secret. */
export class SecretError extends BlocksError {
  override readonly code: SecretErrorCode;

  constructor(code: SecretErrorCode, detail: string, cause?: unknown) {
    super(code, secretErrors[code].status, detail, { cause });
    this.name = 'SecretError';
    this.code = code;
  }
}

export const isSecretError = (error: unknown): error is SecretError => error instanceof SecretError;
