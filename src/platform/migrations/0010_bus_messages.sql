-- The in-process bus's messages on the embedded default (src/platform/bus/memory-store.ts): a message
-- is kept here once for every durable consumer it is for, until that consumer acks it, so a process
-- killed with messages queued delivers them after it starts again. Ephemeral consumers live in memory only.

-- Durable consumers ever subscribed, so messages published before their subscriber runs again are kept for them.
CREATE TABLE bus_consumers (
  consumer   text PRIMARY KEY,
  subject    text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per published message that some durable consumer has not acked yet.
CREATE TABLE bus_messages (
  seq         bigserial PRIMARY KEY,
  message_id  text NOT NULL,
  subject     text NOT NULL,
  message_key text,
  headers     jsonb NOT NULL DEFAULT '{}',
  payload     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- What each durable consumer has not acked yet; an ack deletes its row.
CREATE TABLE bus_pending (
  consumer text NOT NULL,
  seq      bigint NOT NULL,
  PRIMARY KEY (consumer, seq)
);

-- Messages below the lowest pending sequence are acked by everyone and removed.
CREATE INDEX bus_pending_seq_idx ON bus_pending (seq);
