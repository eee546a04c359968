-- Offers: a lead given to a partner user is `offered` until accepted, and may carry a
-- deadline; a decline or a lapsed deadline lets the lead go (to nobody).

ALTER TABLE rm_leads ADD COLUMN offer_deadline timestamptz;
UPDATE rm_leads SET status = 'offered' WHERE status = 'to_accept';

-- A decline or a lapse is a line of the ownership history with no new owner.
ALTER TABLE rm_ownership_history ALTER COLUMN to_kind DROP NOT NULL,
                                 ALTER COLUMN to_id DROP NOT NULL;

-- Pending offers with a deadline: what the scheduler fires (the offer_timers projection).
CREATE TABLE rm_offer_timers
(
    lead_id   uuid PRIMARY KEY,
    org_id    uuid        NOT NULL,
    -- the partner user the lead is offered to
    user_id   uuid        NOT NULL,
    deadline  timestamptz NOT NULL,
    -- when the reminder goes out; NULL once it went out, or with no reminder
    remind_at timestamptz
);
CREATE INDEX rm_offer_timers_deadline ON rm_offer_timers (deadline);
CREATE INDEX rm_offer_timers_remind_at ON rm_offer_timers (remind_at) WHERE remind_at IS NOT NULL;
