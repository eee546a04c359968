-- Failure isolation (issue: one org's input never stops another's pipeline).
--
-- Read models never key a btree on unbounded text: a name longer than a btree row allows
-- (about 2,700 bytes) made the directory projector fail for ever. Names are bounded at the
-- write edge now, but events already in the log may hold longer ones, so the indexes key on
-- the org alone (a directory is listed per org and sorted in memory).
DROP INDEX IF EXISTS rm_partner_accounts_org;
CREATE INDEX rm_partner_accounts_org ON rm_partner_accounts (org_id);
DROP INDEX IF EXISTS rm_partner_users_org;
CREATE INDEX rm_partner_users_org ON rm_partner_users (org_id);

-- Events a log reader (projector or publisher) could not handle: each is set aside for that
-- reader with the reason, and the reader goes on with the next events. Shown by
-- `leadroute projections status` and `quarantine`, reported by `audit verify`; an operator
-- retries (`projections retry`) or skips (`projections skip`) it.
CREATE TABLE projection_quarantine
(
    projection      text        NOT NULL,
    event_id        uuid        NOT NULL,
    -- where the event is in commit order
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    aggregate_type  text        NOT NULL,
    event_type      text        NOT NULL,
    org_id          uuid,
    reason          text        NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- NULL while open; 'retried' (applied later by an operator) or 'skipped'
    resolution      text CHECK (resolution IN ('retried', 'skipped')),
    resolved_at     timestamptz,
    PRIMARY KEY (projection, event_id)
);
