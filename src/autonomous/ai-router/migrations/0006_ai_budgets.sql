-- Spend limits for the AI gateway (src/autonomous/ai-router/budgets/). A budget caps what a tenant,
-- or one API key within a tenant, may spend per UTC day or month. Every change writes an
-- ai.budget.changed event in the same transaction; each replica keeps the budgets in memory.
CREATE TABLE IF NOT EXISTS ai_budgets (
  tenant     text NOT NULL,
  scope      text NOT NULL CHECK (scope IN ('tenant', 'api_key')),
  subject    text NOT NULL,                      -- the tenant itself, or an API key id (key_ + 16 hex)
  period     text NOT NULL CHECK (period IN ('day', 'month')),
  limit_usd  numeric(20, 8) NOT NULL CHECK (limit_usd >= 0),
  version    integer NOT NULL DEFAULT 1,         -- optimistic concurrency for PUT
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant, scope, subject, period),
  CHECK (scope <> 'tenant' OR subject = tenant)
);

-- Money spent and money held for calls in flight, per budget and period. Keyed by the budget's
-- natural key rather than a reference to its row: replacing a budget's limit keeps the period's
-- spend, and a call settling after its budget was deleted still has a row to settle into.
-- reserve() holds with one conditional upsert per budget:
--   held_usd = held_usd + amount WHERE spent_usd + held_usd + amount <= limit_usd
-- which takes the row lock, so concurrent reservations (any process) queue on it and none overspends.
CREATE TABLE IF NOT EXISTS ai_budget_spend (
  tenant       text NOT NULL,
  scope        text NOT NULL,
  subject      text NOT NULL,
  period       text NOT NULL,
  period_start date NOT NULL,                    -- UTC day, or the first day of the UTC month
  spent_usd    numeric(20, 8) NOT NULL DEFAULT 0,
  held_usd     numeric(20, 8) NOT NULL DEFAULT 0 CHECK (held_usd >= 0),
  PRIMARY KEY (tenant, scope, subject, period, period_start)
);

-- One row per (call, budget) while the call is in flight. settle()/release() delete them; a process
-- that dies first leaves them behind until expires_at (now + ai.budgets.hold_ttl), after which the
-- sweep, or the next reservation refused on that budget, gives the money back.
CREATE TABLE IF NOT EXISTS ai_budget_holds (
  hold_id      uuid NOT NULL,
  tenant       text NOT NULL,
  scope        text NOT NULL,
  subject      text NOT NULL,
  period       text NOT NULL,
  period_start date NOT NULL,
  amount_usd   numeric(20, 8) NOT NULL CHECK (amount_usd >= 0),
  expires_at   timestamptz NOT NULL,
  PRIMARY KEY (hold_id, scope, period)
);

CREATE INDEX IF NOT EXISTS ai_budget_holds_expires_idx ON ai_budget_holds (expires_at);

-- Spend per tenant, API key, model and UTC day, counted from ai.request.completed / ai.request.failed
-- events (inbox: each event once). api_key_id is null for calls without a key.
CREATE TABLE IF NOT EXISTS ai_usage_daily (
  tenant            text NOT NULL,
  api_key_id        text,
  model             text NOT NULL,
  day               date NOT NULL,
  requests          bigint NOT NULL DEFAULT 0,
  failures          bigint NOT NULL DEFAULT 0,
  cached            bigint NOT NULL DEFAULT 0,
  prompt_tokens     bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  cost_usd          numeric(20, 8) NOT NULL DEFAULT 0,
  CONSTRAINT ai_usage_daily_key UNIQUE NULLS NOT DISTINCT (tenant, api_key_id, model, day)
);

CREATE INDEX IF NOT EXISTS ai_usage_daily_tenant_day_idx ON ai_usage_daily (tenant, day);
