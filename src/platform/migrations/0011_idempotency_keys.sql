-- Idempotency keys (src/platform/idempotency): one row per (tenant, caller, Idempotency-Key) while a
-- request carrying it runs (state in_flight) and, once it answered below 500, its stored answer
-- (state completed), replayed to any retry until expires_at (idempotency.window after it began).
--
-- The primary key is the lock: the INSERT that creates the row decides which of two racing
-- requests runs; the other sees the row. A row past expires_at is taken over by the next request
-- with its key, and removed by the retention sweep.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  tenant       text NOT NULL,
  principal    text NOT NULL,                    -- the caller: API key id or token subject
  key          text NOT NULL,                    -- the Idempotency-Key header as sent
  fingerprint  text NOT NULL,                    -- SHA-256 of method, URL and body: the same key with another request is refused
  state        text NOT NULL CHECK (state IN ('in_flight', 'completed')),
  status       integer,                          -- the stored answer, once completed
  headers      jsonb,
  body         bytea,
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  PRIMARY KEY (tenant, principal, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_expires_idx ON idempotency_keys (expires_at);
