import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { BlocksError } from '../errors.ts';
import { httpErrors } from './errors.ts';

/**
 * Who is calling, as every module sees it: the tenant whose data the request may touch and the
 * API key it came with. Modules scope reads, writes, budgets and usage by it.
 *
 * Until the identity service (issue 4) verifies tokens, the tenant is taken from the
 * `x-blocks-tenant` header and the key is only named, not checked: this is attribution for a
 * trusted network, not authentication. Only this file changes when identity lands.
 */
export interface Caller {
  readonly tenant: string;
  /** `key_` + 16 hex digits of the key's SHA-256, so the raw key is never stored or logged; null without a key. */
  readonly apiKeyId: string | null;
}

export const DEFAULT_TENANT = 'default';
export const TENANT_HEADER = 'x-blocks-tenant';
const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * The caller of a request from its headers: `x-blocks-tenant` (default `default`), and the key in
 * `Authorization: Bearer …` or `x-api-key`.
 * @throws BlocksError INVALID_TENANT (400) for a tenant id that is not a lowercase slug.
 */
export function callerOf(headers: IncomingHttpHeaders): Caller {
  const rawTenant = headers[TENANT_HEADER];
  const tenant = rawTenant === undefined ? DEFAULT_TENANT : Array.isArray(rawTenant) ? undefined : rawTenant;
  if (tenant === undefined || !TENANT_PATTERN.test(tenant)) {
    throw new BlocksError(
      'INVALID_TENANT',
      httpErrors.INVALID_TENANT.status,
      `Header ${TENANT_HEADER} must be one lowercase id of letters, digits, '-' or '_' (at most 63 characters).`,
      { extensions: { header: TENANT_HEADER } },
    );
  }
  return { tenant, apiKeyId: keyIdOf(bearerOf(headers.authorization) ?? single(headers['x-api-key'])) };
}

function bearerOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match?.[1];
}

const single = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

const keyIdOf = (key: string | undefined): string | null =>
  key === undefined || key === '' ? null : `key_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
