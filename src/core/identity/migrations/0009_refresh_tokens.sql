-- Refresh tokens of Blocks' authorization server (src/core/identity/tokens/refresh-tokens.ts).
-- The raw token (brt_ + base64url of 32 random bytes) is given to the client once and never stored:
-- token_hash is its SHA-256 (a 256-bit random value cannot be guessed, so a fast hash suffices, as
-- for API keys in 0007).
--
-- Each use rotates the token: the row gets used_at and a new row joins the same family. A row
-- presented again after used_at is set means two parties hold the token (RFC 9700 §4.14.2), so the
-- whole family is deleted and every token of it stops working. Rows stay after use until they
-- expire, to recognise such reuse; the expired rows of a user are purged at that user's next login.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  id          uuid PRIMARY KEY,
  token_hash  bytea NOT NULL UNIQUE,
  family_id   uuid NOT NULL,                    -- every token rotated from one grant
  tenant      text NOT NULL REFERENCES tenants (id),
  -- Bound to the client it was issued to; deleting the client ends its sessions.
  client_id   text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
  -- The user of a password grant; deleting the user ends its sessions.
  user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
  subject     text NOT NULL,                    -- `sub` of the access tokens it yields
  scopes      text[] NOT NULL,                  -- the original grant: a refresh may narrow it, never widen it
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,             -- auth.refresh_token_ttl after this token was issued
  used_at     timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user_idx ON refresh_tokens (user_id);
