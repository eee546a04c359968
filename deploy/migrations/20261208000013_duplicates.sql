-- Possible duplicates: the keys new leads are matched by (the duplicate_keys projection),
-- and the lead a held or merged lead names.

CREATE TABLE rm_lead_keys
(
    org_id  uuid NOT NULL,
    -- 'email' or 'domain'
    kind    text NOT NULL,
    -- normalized: lowercased, trimmed; a domain without www.
    value   text NOT NULL,
    -- the lead field it was read from
    field   text NOT NULL,
    lead_id uuid NOT NULL,
    PRIMARY KEY (org_id, kind, value, lead_id, field)
);
CREATE INDEX rm_lead_keys_lead ON rm_lead_keys (lead_id, field);

-- 'held' (a possible duplicate of held_of), 'merged' (into held_of), 'rejected'
ALTER TABLE rm_leads ADD COLUMN held_of uuid;

-- Every offer to a partner user and how it ended (the offers projection): the source of
-- acceptance rates and times per partner account.
CREATE TABLE rm_offers
(
    lead_id     uuid        NOT NULL,
    -- the lead event that made the offer
    sequence    bigint      NOT NULL,
    org_id      uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    offered_at  timestamptz NOT NULL,
    -- 'pending', 'accepted', 'declined', 'lapsed', 'moved'
    outcome     text        NOT NULL,
    answered_at timestamptz,
    PRIMARY KEY (lead_id, sequence)
);
CREATE INDEX rm_offers_pending ON rm_offers (lead_id) WHERE outcome = 'pending';
CREATE INDEX rm_offers_user ON rm_offers (org_id, user_id);
