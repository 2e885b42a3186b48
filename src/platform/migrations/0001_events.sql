-- Every SystemEvent (spec "Event Schema") is written here in the same transaction as the change it
-- describes (transactional outbox) and relayed to the bus by src/platform/events/relay.ts.

CREATE TABLE events (
  event_id        uuid PRIMARY KEY,
  event_type      text NOT NULL,
  source_service  text NOT NULL,
  target_services text[] NOT NULL DEFAULT '{}',
  payload         jsonb NOT NULL DEFAULT '{}',
  "timestamp"     timestamptz NOT NULL,
  correlation_id  text NOT NULL,
  version         text NOT NULL DEFAULT '1.0',
  -- Outbox bookkeeping, not part of the published event.
  sequence        bigserial NOT NULL UNIQUE,  -- relay order
  ordering_key    text NOT NULL,              -- the bus key: events sharing it are published in sequence order
  traceparent     text,                       -- W3C trace context of the request that caused the event
  published_at    timestamptz,                -- null until the bus has stored the event
  attempts        integer NOT NULL DEFAULT 0, -- failed publish attempts
  last_error      text,
  locked_by       text,                       -- the relay pass holding the row, until locked_until
  locked_until    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- The relay's scan: pending rows in order, and pending rows of one key.
CREATE INDEX events_pending_idx ON events (sequence) WHERE published_at IS NULL;
CREATE INDEX events_pending_key_idx ON events (ordering_key, sequence) WHERE published_at IS NULL;
-- Following one request through everything it caused.
CREATE INDEX events_correlation_idx ON events (correlation_id);

-- What each consumer has processed, so a redelivered event has no second effect.
CREATE TABLE inbox (
  consumer     text NOT NULL,
  event_id     text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);
