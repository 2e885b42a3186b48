import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/port.ts';
import type { Caller } from '../http/caller.ts';
import type { TicketRedeemer } from '../http/access.ts';

/**
 * WebSocket tickets in the database, so one replica can issue a ticket and another redeem it.
 *
 * Guarantees:
 * - a ticket speaks for the caller it was issued to (tenant, principal) with at most that caller's
 *   scopes: it can be narrowed when issued, never widened;
 * - it is redeemed (consumed) at most once, by one statement (`DELETE … RETURNING`): of any number
 *   of upgrades presenting it at once, on any replica, exactly one gets the caller;
 * - it is refused once `ttlMs` has passed since it was issued, consumed or not;
 * - only its SHA-256 is stored.
 * Revoking the credential it was issued for does not recall a ticket already issued: it lives
 * `ttlMs` (30 s by default) and opens one connection.
 */
export interface WebSocketTickets extends TicketRedeemer {
  /** A new ticket for `caller`, limited to `scopes` when given (each must be one the caller holds). */
  issue(caller: Caller, scopes?: readonly string[]): Promise<IssuedTicket>;
}

export interface IssuedTicket {
  readonly ticket: string;
  readonly expiresAt: Date;
  readonly scopes: readonly string[];
}

export interface WebSocketTicketsOptions {
  readonly db: Queryable;
  readonly clock: Clock;
  readonly ttlMs: number;
}

/** `wst_` and 32 random bytes, base64url: unguessable, and recognisable in a leaked log. */
const TICKET = /^wst_[A-Za-z0-9_-]{43}$/;

const hashOf = (ticket: string): string => createHash('sha256').update(ticket).digest('hex');

interface TicketRow {
  caller: Caller;
  expires_at: Date;
}

export function createWebSocketTickets(options: WebSocketTicketsOptions): WebSocketTickets {
  const { db, clock, ttlMs } = options;
  return {
    async issue(caller, scopes) {
      const granted = scopes === undefined ? [...caller.scopes] : [...new Set(scopes)];
      const notHeld = granted.filter((scope) => !caller.scopes.includes(scope));
      if (notHeld.length > 0) throw new Error(`a ticket cannot carry scopes its caller lacks: ${notHeld.join(', ')}`);
      const ticket = `wst_${randomBytes(32).toString('base64url')}`;
      const now = clock.now();
      const expiresAt = new Date(now + ttlMs);
      // Expired tickets go here, not on a timer: issuing is the only thing that adds rows.
      await db.query('DELETE FROM ws_tickets WHERE expires_at < $1', [new Date(now)]);
      await db.query('INSERT INTO ws_tickets (ticket_hash, tenant, caller, expires_at) VALUES ($1, $2, $3, $4)', [
        hashOf(ticket),
        caller.tenant,
        JSON.stringify({ ...caller, scopes: granted }),
        expiresAt,
      ]);
      return { ticket, expiresAt, scopes: granted };
    },

    async redeem(ticket, { consume }) {
      if (!TICKET.test(ticket)) return null;
      const { rows } = consume
        ? await db.query<TicketRow>('DELETE FROM ws_tickets WHERE ticket_hash = $1 RETURNING caller, expires_at', [hashOf(ticket)])
        : await db.query<TicketRow>('SELECT caller, expires_at FROM ws_tickets WHERE ticket_hash = $1', [hashOf(ticket)]);
      const row = rows[0];
      if (row === undefined || row.expires_at.getTime() <= clock.now()) return null;
      return Object.freeze({ ...row.caller, scopes: Object.freeze([...row.caller.scopes]) });
    },
  };
}
