-- Signing keys of Blocks' own authorization server (src/core/identity/tokens/). The private key
-- is stored only encrypted (AES-256-GCM under the key-encryption key, the kid as associated data).
-- One key is current (retired_at IS NULL) and signs new tokens; a retired key stays in the JWKS
-- until expires_at, when no token it signed can still be valid.
CREATE TABLE IF NOT EXISTS signing_keys (
  kid               text PRIMARY KEY,
  alg               text NOT NULL CHECK (alg IN ('ES256', 'EdDSA')),
  public_jwk        jsonb NOT NULL,
  encrypted_private bytea NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  retired_at        timestamptz,
  expires_at        timestamptz,
  CHECK ((retired_at IS NULL) = (expires_at IS NULL))
);

-- At most one current key, even when two replicas rotate at once.
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_one_current ON signing_keys ((true)) WHERE retired_at IS NULL;
