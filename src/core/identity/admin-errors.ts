import { BlocksError } from '../../platform/errors.ts';
import { defineErrors } from '../../platform/define-errors.ts';

/**
 * Codes of the user and device admin API, part of the identity catalogue (`identityErrors` in
 * index.ts joins them with errors.ts) and listed with it in docs/errors.md.
 */
export const userAndDeviceErrors = defineErrors(import.meta.url, {
  USER_NOT_FOUND: { status: 404, title: 'User not found' },
  USER_EXISTS: { status: 409, title: 'User already exists' },
  DEVICE_NOT_FOUND: { status: 404, title: 'Device not found' },
  DEVICE_EXISTS: { status: 409, title: 'Device already registered' },
});

type Code = keyof typeof userAndDeviceErrors;

const error = (code: Code, detail: string, extensions: Record<string, unknown>): BlocksError =>
  new BlocksError(code, userAndDeviceErrors[code].status, detail, { extensions });

// Another tenant's user or device is reported exactly like a missing one.
export const userNotFound = (id: string): BlocksError => error('USER_NOT_FOUND', `No user '${id}'.`, { id });
export const deviceNotFound = (id: string): BlocksError => error('DEVICE_NOT_FOUND', `No device '${id}'.`, { id });

// Only within the caller's own tenant: emails and fingerprints are unique per tenant, so this says nothing about others.
export const userExists = (email: string): BlocksError =>
  error('USER_EXISTS', `A user with email '${email}' exists already in this tenant.`, { email });
export const deviceExists = (fingerprint: string): BlocksError =>
  error('DEVICE_EXISTS', `A device with this fingerprint is registered already in this tenant.`, { fingerprint });
