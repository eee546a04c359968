-- Messages that can never succeed, kept with their reason so nothing is lost and they can
-- be inspected and replayed (`leadroute dlq list|show|replay`).
CREATE TABLE dead_letters
(
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- which consumer gave up ('intake', ...)
    source          text        NOT NULL,
    -- where the message was in JetStream: at most one dead letter per message
    stream          text        NOT NULL,
    stream_sequence bigint      NOT NULL,
    subject         text        NOT NULL,
    headers         jsonb       NOT NULL,
    payload         bytea       NOT NULL,
    -- stable machine code ('not_json', 'unsupported_schema_version', ...) and details
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    replayed_at     timestamptz,
    UNIQUE (stream, stream_sequence)
);
CREATE INDEX dead_letters_created ON dead_letters (created_at DESC);
