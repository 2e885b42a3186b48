-- WebSocket tickets (src/platform/websocket/tickets.ts): a short-lived, single-use stand-in for a
-- credential, for clients that can set neither a header nor a subprotocol. Only the SHA-256 of a
-- ticket is stored, so reading this table opens nothing.
--
-- The DELETE … RETURNING that redeems a ticket is the lock: of any number of upgrades presenting it,
-- on any replica, exactly one gets its row. Rows past expires_at are deleted when tickets are issued.
CREATE TABLE IF NOT EXISTS ws_tickets (
  ticket_hash  text PRIMARY KEY,
  tenant       text NOT NULL,
  caller       jsonb NOT NULL,               -- the Caller it stands for, scopes as issued (never wider than the issuer's)
  expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ws_tickets_expires_idx ON ws_tickets (expires_at);
