-- How many times the in-process bus has handed each pending message to its consumer (src/platform/bus/memory-store.ts),
-- so a message whose handling kills the process is dead-lettered after bus.max_deliver deliveries
-- across restarts, as a broker counts redeliveries, instead of being delivered again after every start.
ALTER TABLE bus_pending ADD COLUMN IF NOT EXISTS deliveries integer NOT NULL DEFAULT 0;

-- Retention reads the oldest messages first.
CREATE INDEX IF NOT EXISTS bus_messages_created_at_idx ON bus_messages (created_at);
