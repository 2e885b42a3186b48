import type { Queryable } from '../../platform/db/port.ts';
import type { BlocksError } from '../../platform/errors.ts';
import { appendEvent } from '../../platform/events/index.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';

/** Who made an admin change, carried into its audit event. */
export interface ChangeContext {
  readonly correlationId: string;
  readonly traceparent?: string | undefined;
  /** Who made the change: the caller's key id or token subject; null for the platform itself (first start). */
  readonly actor?: string | null | undefined;
  /**
   * The scopes the caller making the change holds (`request.caller.scopes`): a change to a principal
   * holding a scope outside these is refused (see {@link requireActorHolds}). The admin API always
   * sets it; absent only for the platform itself (first start, a test's fixtures), which holds everything.
   */
  readonly actorScopes?: readonly string[] | undefined;
}

/**
 * The rule for acting on a principal: whoever rotates a client's secret, resets a user's password,
 * changes its roles, revokes a key or deletes a client or user must hold every scope the target
 * holds (a user: what its roles grant). Otherwise a narrow admin takes over, or locks out, a wider
 * principal: rotate the operator client's secret and mint `tenants:admin`. Called inside the
 * change's transaction, with the target's row locked, so the scopes checked are the ones changed.
 * A principal acting on itself holds its own scopes, so a key may always revoke itself; a token
 * narrowed below its client's scopes may not rotate that client's secret (it would widen itself back).
 * @throws the error `refuse` makes of the scopes not held (SCOPE_NOT_GRANTABLE)
 */
export function requireActorHolds(
  scopes: ScopeCatalog,
  context: ChangeContext,
  targetScopes: readonly string[],
  refuse: (notHeld: string[]) => BlocksError,
): void {
  if (context.actorScopes === undefined) return;
  const notHeld = scopes.scopesNotHeld(targetScopes, context.actorScopes);
  if (notHeld.length > 0) throw refuse(notHeld);
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
