-- Credentials and request bookkeeping of the HTTP API (leadroute-services, `access` and
-- `api::idempotency`). Not event-sourced on purpose: the event log is published to NATS,
-- and no secret or secret hash may travel there. Only hashes of secrets are stored: SHA-256
-- of random 256-bit tokens (API keys, session tokens, set-password links), argon2id of
-- passwords.

CREATE TABLE api_keys
(
    key_id           uuid PRIMARY KEY,
    org_id           uuid        NOT NULL,
    name             text        NOT NULL,
    role             text        NOT NULL CHECK (role IN ('admin', 'channel_manager', 'integration')),
    -- the internal user recorded as the actor of the key's commands
    internal_user_id uuid        NOT NULL,
    secret_sha256    bytea       NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at       timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

-- One row per invitation (PartnerUserActivated); the link's token hash is set when the
-- link is issued (by the mailer), and `used_at` when it set a password.
CREATE TABLE invitations
(
    invitation_id uuid PRIMARY KEY,
    org_id        uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    token_sha256  bytea       NOT NULL UNIQUE,
    expires_at    timestamptz NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    used_at       timestamptz
);

CREATE TABLE partner_credentials
(
    user_id       uuid PRIMARY KEY,
    org_id        uuid        NOT NULL,
    account_id    uuid        NOT NULL,
    -- normalised (trimmed, lower-case), as in the ContactAdded event
    email         text        NOT NULL,
    -- argon2id, PHC string format
    password_hash text        NOT NULL,
    set_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- one sign-in per email and org (contacts of different accounts may share an email; only
-- the first to set a password signs in with it)
CREATE UNIQUE INDEX partner_credentials_email ON partner_credentials (org_id, email);

CREATE TABLE sessions
(
    token_sha256 bytea PRIMARY KEY,
    org_id       uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Idempotency keys of commands: a repeat with the same key returns the stored response.
-- `status` is NULL while the first request is still running.
CREATE TABLE idempotency_keys
(
    org_id         uuid        NOT NULL,
    -- who sent it (key id or partner user id): keys are per caller
    principal      uuid        NOT NULL,
    key            text        NOT NULL,
    request_sha256 bytea       NOT NULL,
    status         smallint,
    body           bytea,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (org_id, principal, key)
);
