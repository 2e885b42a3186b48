-- Outcomes of routing decisions, learned from by the AI router (src/autonomous/ai-router/learning/):
-- 'feedback' rows come from POST /api/v1/autonomous/ai/feedback, 'proxy' rows from every proxied call
-- (ai.request.completed / ai.request.failed). Each replica warms its estimates from recent rows at
-- start, and /ai/stats measures how well decision confidence predicted them (calibration).
CREATE TABLE IF NOT EXISTS ai_outcomes (
  id                uuid PRIMARY KEY,
  decision_id       uuid,                          -- null for a proxied call that named a concrete model
  request_id        uuid UNIQUE,                   -- the proxied request; null for feedback
  source            text NOT NULL CHECK (source IN ('feedback', 'proxy')),
  tenant            text NOT NULL,
  model             text NOT NULL,                 -- the model the outcome is about
  task_type         text NOT NULL,
  complexity        text NOT NULL CHECK (complexity IN ('low', 'medium', 'high')),
  success           boolean,                       -- null when a proxied call says nothing about the model (rate limited, client error)
  quality_score     double precision CHECK (quality_score BETWEEN 0 AND 1),
  latency_ms        double precision CHECK (latency_ms >= 0),
  prompt_tokens     integer CHECK (prompt_tokens >= 0),
  completion_tokens integer CHECK (completion_tokens >= 0),
  cost_usd          numeric(20, 8) CHECK (cost_usd >= 0),
  confidence        double precision CHECK (confidence BETWEEN 0 AND 1), -- the decision's, for calibration
  attempts          jsonb,                         -- proxied calls: [{model, outcome, kind, latency_ms}], replayed at warm-up
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  -- One outcome per decision and source: a second feedback is refused, a redelivered call event is not stored twice.
  UNIQUE (decision_id, source)
);

-- Warm-up reads recent rows; calibration reads one tenant's rows in a window.
CREATE INDEX IF NOT EXISTS ai_outcomes_recorded_at_idx ON ai_outcomes (recorded_at);
CREATE INDEX IF NOT EXISTS ai_outcomes_tenant_recorded_at_idx ON ai_outcomes (tenant, recorded_at);

-- Feedback finds its decision among the events by id; only the event types that carry one are indexed.
CREATE INDEX IF NOT EXISTS events_ai_decision_id_idx ON events ((payload ->> 'decision_id'))
  WHERE event_type IN ('ai.route.decided', 'ai.request.completed', 'ai.request.failed');
