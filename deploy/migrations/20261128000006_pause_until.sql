-- A pause of automatic routing may have an end (out of office): past it, the partner user
-- is available again without a resume. Queries compare it with the time of the read.
ALTER TABLE rm_partner_users ADD COLUMN paused_until timestamptz;
