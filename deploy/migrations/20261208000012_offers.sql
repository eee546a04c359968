-- Offers: a lead given to a partner user is `offered` until accepted, and may carry a
-- deadline; a decline or a lapsed deadline lets the lead go (to nobody).

ALTER TABLE rm_leads ADD COLUMN offer_deadline timestamptz;
UPDATE rm_leads SET status = 'offered' WHERE status = 'to_accept';

-- A decline or a lapse is a line of the ownership history with no new owner.
ALTER TABLE rm_ownership_history ALTER COLUMN to_kind DROP NOT NULL,
                                 ALTER COLUMN to_id DROP NOT NULL;
