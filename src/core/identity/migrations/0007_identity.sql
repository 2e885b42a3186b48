-- Identity (src/core/identity/): tenants, API keys, OAuth clients, users and devices. Every row
-- belongs to one tenant and every query names it, so one tenant's admin never reaches another's.
CREATE TABLE IF NOT EXISTS tenants (
  id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The raw key (bk_ + base64url of 32 random bytes) is shown once and never stored. key_hash is its
-- SHA-256: a slow password hash (argon2id, bcrypt) exists to make guessing low-entropy passwords
-- expensive, but a 256-bit random key cannot be guessed whatever the hash costs, and a fast hash
-- keeps verification on every request to one digest and one index lookup.
CREATE TABLE IF NOT EXISTS api_keys (
  id           uuid PRIMARY KEY,
  tenant       text NOT NULL REFERENCES tenants (id),
  name         text NOT NULL,
  prefix       text NOT NULL,                    -- the first characters of the key, shown to humans to tell keys apart
  key_hash     bytea NOT NULL UNIQUE,
  scopes       text[] NOT NULL DEFAULT '{}',
  expires_at   timestamptz,
  last_used_at timestamptz,                      -- recorded at most once a minute per key, off the request path
  revoked_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON api_keys (tenant, id);

-- Client secrets are hashed with argon2id (PHC string) like passwords; a new client has no scopes
-- unless given some (least privilege).
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id   text PRIMARY KEY,
  tenant      text NOT NULL REFERENCES tenants (id),
  name        text NOT NULL,
  secret_hash text NOT NULL,
  scopes      text[] NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  rotated_at  timestamptz
);
CREATE INDEX IF NOT EXISTS oauth_clients_tenant_idx ON oauth_clients (tenant, client_id);

CREATE TABLE IF NOT EXISTS users (
  id            uuid PRIMARY KEY,
  tenant        text NOT NULL REFERENCES tenants (id),
  email         text NOT NULL,                   -- stored lowercased: unique per tenant whatever the case typed
  password_hash text NOT NULL,                   -- argon2id PHC string
  roles         text[] NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant, email)
);
CREATE INDEX IF NOT EXISTS users_tenant_idx ON users (tenant, id);

-- Registered devices, for tenants that require a known device (zero-trust decision, later slice).
CREATE TABLE IF NOT EXISTS devices (
  id          uuid PRIMARY KEY,
  tenant      text NOT NULL REFERENCES tenants (id),
  fingerprint text NOT NULL,                     -- client certificate fingerprint or device id
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant, fingerprint)
);
