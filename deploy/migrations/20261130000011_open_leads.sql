-- Open leads per owner (issue: caps hold under concurrency).
--
-- How many open leads each partner user or queue holds, changed in the transaction that
-- commits the lead events that change it (the store's commit), never by a log reader. Routing
-- reads caps from here, so it sees what is committed and not a lagging read model; a commit
-- that would take a capped member past its cap is refused as a lost race, and the router
-- decides again. A lead is open while a partner user or queue owns it and its `status`
-- field is not won, lost or disqualified.
CREATE TABLE owner_open_leads
(
    org_id   uuid    NOT NULL,
    owner_id uuid    NOT NULL,
    open     integer NOT NULL,
    PRIMARY KEY (org_id, owner_id)
);

-- Seeded from the leads read model as it stands when this migration runs (the same
-- definition of open); from here on the commits keep it.
INSERT INTO owner_open_leads (org_id, owner_id, open)
SELECT org_id, owner_id, count(*)
  FROM rm_leads
 WHERE owner_id IS NOT NULL
   AND status IN ('to_accept', 'accepted', 'queued')
   AND coalesce(lower(btrim(fields ->> 'status', E' \t\n\r')), '') NOT IN ('won', 'lost', 'disqualified')
 GROUP BY org_id, owner_id;

-- Leads waiting for their target, kept like the counts above by the commits that change
-- them: left unrouted because the target had nobody with room (`all_at_capacity`) or nobody
-- who may take them (`no_assignable_member`), with no owner. They are routed, oldest first,
-- when a member of the target frees capacity or becomes eligible.
CREATE TABLE waiting_leads
(
    lead_id uuid PRIMARY KEY,
    org_id  uuid        NOT NULL,
    -- the pool, queue or partner user it waits for (NULL: not recorded)
    target  uuid,
    -- when it was left waiting
    since   timestamptz NOT NULL,
    -- all_at_capacity or no_assignable_member
    reason  text        NOT NULL
);
CREATE INDEX waiting_leads_org ON waiting_leads (org_id, target, since, lead_id);

-- Seeded with the leads that wait as this migration runs: no owner, not closed, and the
-- last routing decision left them unrouted for one of those reasons.
INSERT INTO waiting_leads (lead_id, org_id, since, reason)
SELECT l.lead_id, l.org_id, (d.payload -> 'LeadNotRouted' ->> 'at')::timestamptz,
       d.payload -> 'LeadNotRouted' ->> 'reason'
  FROM rm_leads l
 CROSS JOIN LATERAL (
       SELECT e.payload FROM events e
        WHERE e.aggregate_type = 'Lead' AND e.aggregate_id = l.lead_id::text
          AND e.event_type IN ('LeadNotRouted', 'LeadRouted', 'LeadOwnerKept')
        ORDER BY e.sequence DESC LIMIT 1) d
 WHERE l.owner_id IS NULL
   AND coalesce(lower(btrim(l.fields ->> 'status', E' \t\n\r')), '') NOT IN ('won', 'lost', 'disqualified')
   AND d.payload -> 'LeadNotRouted' ->> 'reason' IN ('all_at_capacity', 'no_assignable_member');
