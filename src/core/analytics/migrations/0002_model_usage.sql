-- Per-model usage as counted by core.analytics from ai.route.decided events.
CREATE TABLE IF NOT EXISTS analytics_model_usage (
  model             text PRIMARY KEY,
  decisions         bigint NOT NULL DEFAULT 0,
  estimated_cost_usd numeric(20, 8) NOT NULL DEFAULT 0,
  last_decided_at   timestamptz NOT NULL
);
