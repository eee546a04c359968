-- Emails the mailer sent or is sending (leadroute-services `mailer`): one row per
-- triggering event and recipient, written before the message goes out and marked sent
-- after, so a redelivered event never sends a second email. With the `log` transport this
-- table is where messages go (readable over GET /v1/notifications). Bodies are stored
-- with set-password tokens redacted: the table never holds a usable link.

CREATE TABLE notifications
(
    event_id         uuid        NOT NULL,
    recipient        text        NOT NULL,
    org_id           uuid        NOT NULL,
    -- 'access' or 'assignment'
    kind             text        NOT NULL,
    -- the template version rendered (0: the built-in default)
    template_version integer     NOT NULL,
    subject          text        NOT NULL,
    text_body        text        NOT NULL,
    html_body        text,
    -- 'log' or 'smtp'
    transport        text        NOT NULL,
    -- 'sending' until the transport accepted it, then 'sent'
    status           text        NOT NULL CHECK (status IN ('sending', 'sent')),
    -- while 'sending': the worker holding it may send until then; after, another may
    lease_until      timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at          timestamptz,
    PRIMARY KEY (event_id, recipient)
);
CREATE INDEX notifications_org ON notifications (org_id, created_at DESC);
