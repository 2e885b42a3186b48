import type { Queryable } from '../../platform/db/port.ts';
import { appendEvent } from '../../platform/events/index.ts';

/** Who made an admin change, carried into its audit event. */
export interface ChangeContext {
  readonly correlationId: string;
  readonly traceparent?: string | undefined;
  /** Who made the change: the caller's key id or token subject; null for the platform itself (first start). */
  readonly actor?: string | null | undefined;
}

/**
 * Creates the tenant on its first write if it has no row yet: a tenant named only by an external
 * issuer's tokens (`auth.external_issuers[].tenant` or its tenant claim) exists from its first admin change.
 */
export async function ensureTenant(tx: Queryable, tenant: string): Promise<void> {
  await tx.query('INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT (id) DO NOTHING', [tenant]);
}

/** Writes the audit event of an admin change in the transaction making it. Never carries a secret or hash. */
export async function auditChange(
  tx: Queryable,
  eventType: string,
  tenant: string,
  context: ChangeContext,
  payload: Record<string, unknown>,
): Promise<void> {
  await appendEvent(tx, {
    event_type: eventType,
    source_service: 'core.identity',
    correlation_id: context.correlationId,
    traceparent: context.traceparent,
    key: `identity-${tenant}`,
    payload: { tenant, actor: context.actor ?? null, ...payload },
  });
}
