-- The partner portal: org slugs (the org's address in partner links, `/p/<slug>/`).
-- `OrgCreated` records the slug; this table keeps it unique across orgs and finds the org
-- of an address. Orgs created before slugs have none and are addressed by id.
CREATE TABLE org_slugs (
    slug   text PRIMARY KEY,
    org_id uuid NOT NULL UNIQUE
);
