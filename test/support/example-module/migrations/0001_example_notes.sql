-- The example module's tables (test/support/example-module): a tenant-owned resource, and what its
-- consumer counted from the resource's events.
CREATE TABLE IF NOT EXISTS example_notes (
  id         uuid PRIMARY KEY,
  tenant     text NOT NULL,
  title      text NOT NULL,
  body       text,
  tags       jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS example_notes_tenant_idx ON example_notes (tenant, id);

CREATE TABLE IF NOT EXISTS example_note_counts (
  tenant  text PRIMARY KEY,
  created integer NOT NULL DEFAULT 0
);
