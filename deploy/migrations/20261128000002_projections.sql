-- Projection checkpoints and the read models built from the event log.
--
-- Every read-model table is written only by its projector (leadroute-projections), which
-- writes rows and its checkpoint in one transaction. Rows hold only values derived from
-- events (never now()), so a rebuild from position zero reproduces them exactly
-- (`leadroute audit verify` compares the two). Projectors name these tables unqualified:
-- a rebuild points search_path at a scratch schema holding copies made with LIKE.

CREATE TABLE projection_checkpoints
(
    name            text        PRIMARY KEY,
    -- last applied event, in commit order
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    -- events applied since position zero (exactly-once check: equals the events up to here)
    events_applied  bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Partner directory -------------------------------------------------------------------

CREATE TABLE rm_partner_accounts
(
    account_id      uuid PRIMARY KEY,
    org_id          uuid        NOT NULL,
    name            text        NOT NULL,
    channel_manager uuid        NOT NULL,
    territory       text        NOT NULL,
    tier            text        NOT NULL,
    active          boolean     NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX rm_partner_accounts_org ON rm_partner_accounts (org_id, name);
CREATE INDEX rm_partner_accounts_manager ON rm_partner_accounts (channel_manager);

CREATE TABLE rm_partner_users
(
    user_id        uuid PRIMARY KEY,
    org_id         uuid        NOT NULL,
    account_id     uuid        NOT NULL,
    name           text        NOT NULL,
    email          text        NOT NULL,
    active         boolean     NOT NULL,
    signed_in_once boolean     NOT NULL,
    paused         boolean     NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX rm_partner_users_org ON rm_partner_users (org_id, name);
CREATE INDEX rm_partner_users_account ON rm_partner_users (account_id);

CREATE TABLE rm_queues
(
    queue_id   uuid PRIMARY KEY,
    org_id     uuid        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE rm_queue_members
(
    queue_id    uuid NOT NULL,
    -- 'partner_user' or 'partner_account'
    member_kind text NOT NULL,
    member_id   uuid NOT NULL,
    PRIMARY KEY (queue_id, member_kind, member_id)
);
CREATE INDEX rm_queue_members_member ON rm_queue_members (member_id);

-- Leads (partner inbox, queue view, channel-manager view) -------------------------------

CREATE TABLE rm_leads
(
    lead_id          uuid PRIMARY KEY,
    org_id           uuid        NOT NULL,
    upstream_system  text        NOT NULL,
    upstream_lead_id text        NOT NULL,
    fields           jsonb       NOT NULL,
    -- 'partner_user', 'queue', 'internal_user'; NULL while unassigned
    owner_kind       text,
    owner_id         uuid,
    -- 'unassigned', 'queued', 'to_accept' (given to a partner user), 'accepted' (claimed),
    -- 'internal' (owned by an internal user)
    status           text        NOT NULL,
    received_at      timestamptz NOT NULL,
    owner_since      timestamptz,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX rm_leads_owner ON rm_leads (owner_id, received_at DESC, lead_id DESC);

-- Ownership history (scoped to an org through rm_leads) -------------------------------

CREATE TABLE rm_ownership_history
(
    lead_id         uuid        NOT NULL,
    -- the lead aggregate's event sequence number
    sequence        bigint      NOT NULL,
    from_kind       text,
    from_id         uuid,
    to_kind         text        NOT NULL,
    to_id           uuid        NOT NULL,
    actor           jsonb       NOT NULL,
    cause           text        NOT NULL,
    event_type      text        NOT NULL,
    changed_at      timestamptz NOT NULL,
    PRIMARY KEY (lead_id, sequence)
);
