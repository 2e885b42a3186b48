-- Outbox dead letters (src/platform/events/relay.ts): an event the bus refused `outbox.max_attempts`
-- times while it was answering (too large for the broker, a subject it rejects) is moved here from
-- `events`, so it no longer holds back the later events of its ordering key. The relay appends an
-- `outbox.event.dead_lettered` event when it moves one, and counts it in
-- blocks_outbox_dead_letters_total. Failures while the bus is down never count: an outage
-- dead-letters nothing.
CREATE TABLE IF NOT EXISTS outbox_dead_letters (
  event_id        uuid PRIMARY KEY,
  event_type      text NOT NULL,
  source_service  text NOT NULL,
  target_services text[] NOT NULL,
  payload         jsonb NOT NULL,
  "timestamp"     timestamptz NOT NULL,
  correlation_id  text NOT NULL,
  version         text NOT NULL,
  ordering_key    text NOT NULL,
  traceparent     text,
  attempts        integer NOT NULL,   -- failed publish attempts, outages included
  rejections      integer NOT NULL,   -- of those, refusals while the bus answered
  last_error      text,
  created_at      timestamptz NOT NULL, -- when the event was committed
  dead_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS outbox_dead_letters_dead_at_idx ON outbox_dead_letters (dead_at);

-- Refusals while the bus answered, as opposed to `attempts`, which also counts outages.
ALTER TABLE events ADD COLUMN IF NOT EXISTS rejections integer NOT NULL DEFAULT 0;
