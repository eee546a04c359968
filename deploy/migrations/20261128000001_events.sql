-- The event store: the only source of truth.
--
-- The first seven columns are postgres-es's own shape (it inserts exactly those). The
-- other four are never named by postgres-es and are filled by their defaults:
--   global_position  insertion order (NOT commit order: see transaction_id)
--   transaction_id   the writing transaction; readers order by (transaction_id, global_position)
--                    and only read below pg_snapshot_xmin(pg_current_snapshot())
--   recorded_at      wall-clock time of the insert
--   event_id         unique id of the event (Nats-Msg-Id when published)
-- The primary key stays the only unique constraint: postgres-es reports every unique
-- violation as an optimistic-concurrency conflict.
CREATE TABLE events
(
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence >= 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    global_position bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Commit-safe reading order.
CREATE INDEX events_commit_order ON events (transaction_id, global_position);
CREATE INDEX events_global_position ON events (global_position);

-- Wake log readers: one notification per inserting statement, collapsed by PostgreSQL to
-- one per transaction and delivered at commit.
CREATE FUNCTION events_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('leadroute_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT
EXECUTE FUNCTION events_notify();
