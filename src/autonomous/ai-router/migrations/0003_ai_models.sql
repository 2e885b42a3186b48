-- The AI router's model catalog, seeded from config/models.yaml on first start and edited through
-- /api/v1/autonomous/ai/models. Every change writes an ai.catalog.changed event in the same
-- transaction; each replica rebuilds its routing decider from the enabled rows.
CREATE TABLE IF NOT EXISTS ai_models (
  model                 text PRIMARY KEY,
  provider              text NOT NULL,
  task_types            text[] NOT NULL,
  context_window        integer NOT NULL CHECK (context_window > 0),
  input_price_per_mtok  double precision NOT NULL CHECK (input_price_per_mtok >= 0),
  output_price_per_mtok double precision NOT NULL CHECK (output_price_per_mtok >= 0),
  quality               jsonb NOT NULL,               -- { <task type>: { low, medium, high } }
  typical_latency_ms    integer CHECK (typical_latency_ms >= 0),
  enabled               boolean NOT NULL DEFAULT true,
  credentials_ref       text,                         -- e.g. env:OPENAI_API_KEY; never returned by the API
  version               integer NOT NULL DEFAULT 1,   -- optimistic concurrency for PUT
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
