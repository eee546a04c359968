//! The leads projector: one row per lead with its fields, owner and inbox status (with the
//! deadline of a pending offer), the source of the partner inbox, the queue view and the
//! channel-manager view. Each event's change to the row is one [`Effect`], applied alike to
//! a row built in memory and to a patch of a stored row.
//!
//! A batch folds its events in memory: leads it receives become whole rows written with one
//! multi-row insert; leads stored earlier get one multi-row update with their latest owner
//! and merged fields. Two statements per batch, no read-back, so the cost per event stays
//! small.

use super::shared::owner_columns;
use crate::projector::{ProjectionError, Projector};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::Owner;
use leadroute_domain::lead::{HoldResolution, LeadEvent, LeadFields};
use leadroute_store::log::{AnyEvent, LogEvent};
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Builds rm_leads.
pub struct LeadsProjector;

/// Inbox status of a lead.
pub mod status {
    /// Nobody owns it.
    pub const UNASSIGNED: &str = "unassigned";
    /// A queue owns it; its members may claim it.
    pub const QUEUED: &str = "queued";
    /// Given to a partner user, who has not accepted it yet.
    pub const OFFERED: &str = "offered";
    /// The name `offered` had before offers could be accepted; read as `offered` in filters.
    pub const TO_ACCEPT_ALIAS: &str = "to_accept";
    /// Accepted by its partner user (or claimed from a queue).
    pub const ACCEPTED: &str = "accepted";
    /// Owned by an internal user.
    pub const INTERNAL: &str = "internal";
    /// Held as a possible duplicate of another open lead (`held_of`), until resolved.
    pub const HELD: &str = "held";
    /// Merged into the lead it duplicated (`held_of`).
    pub const MERGED: &str = "merged";
    /// Rejected as a duplicate: never routed.
    pub const REJECTED: &str = "rejected";

    /// `status` as stored: the old name `to_accept` is `offered`.
    pub fn stored(status: &str) -> &str {
        if status == TO_ACCEPT_ALIAS {
            OFFERED
        } else {
            status
        }
    }
}

/// A lead's status with the offer's deadline and the lead a hold or merge names.
type Status = (&'static str, Option<DateTime<Utc>>, Option<Uuid>);

/// What one lead event changes on the lead's row.
#[derive(Debug, Default)]
struct Effect<'a> {
    /// Merged into the fields.
    fields: Option<&'a LeadFields>,
    /// The new owner (`Some(None)`: nobody) and since when.
    owner: Option<(Option<&'a Owner>, DateTime<Utc>)>,
    /// The new status, with the offer's deadline and the lead a hold names.
    status: Option<Status>,
    /// When.
    at: Option<DateTime<Utc>>,
}

impl<'a> Effect<'a> {
    fn of(event: &'a LeadEvent) -> Effect<'a> {
        let owned = |owner: &'a Owner, at, status, deadline| Effect {
            owner: Some((Some(owner), at)),
            status: Some((status, deadline, None)),
            at: Some(at),
            ..Effect::default()
        };
        match event {
            LeadEvent::LeadReceived { .. }
            | LeadEvent::LeadOwnerKept { .. }
            | LeadEvent::LeadNotRouted { .. }
            | LeadEvent::LeadOfferReminded { .. } => Effect::default(),
            LeadEvent::LeadHeld { of, at, .. } => Effect {
                status: Some((status::HELD, None, Some(of.0))),
                at: Some(*at),
                ..Effect::default()
            },
            LeadEvent::LeadHoldResolved {
                resolution,
                into,
                at,
                ..
            } => Effect {
                status: Some(match resolution {
                    HoldResolution::RouteAnyway => (status::UNASSIGNED, None, None),
                    HoldResolution::Merge => (status::MERGED, None, into.map(|l| l.0)),
                    HoldResolution::Reject => (status::REJECTED, None, None),
                }),
                at: Some(*at),
                ..Effect::default()
            },
            LeadEvent::LeadUpdated { changed, at, .. }
            | LeadEvent::LeadUpdateStale {
                filled: changed,
                at,
                ..
            } => Effect {
                fields: Some(changed),
                at: Some(*at),
                ..Effect::default()
            },
            LeadEvent::LeadReassigned {
                change, deadline, ..
            }
            | LeadEvent::LeadRouted {
                change, deadline, ..
            } => owned(&change.to, change.at, owner_status(&change.to), *deadline),
            LeadEvent::LeadEnqueued { change } => {
                owned(&change.to, change.at, owner_status(&change.to), None)
            }
            LeadEvent::LeadClaimed { change } => {
                owned(&change.to, change.at, status::ACCEPTED, None)
            }
            LeadEvent::LeadAccepted { at, .. } => Effect {
                status: Some((status::ACCEPTED, None, None)),
                at: Some(*at),
                ..Effect::default()
            },
            LeadEvent::LeadDeclined { at, .. } | LeadEvent::LeadOfferLapsed { at, .. } => Effect {
                owner: Some((None, *at)),
                status: Some((status::UNASSIGNED, None, None)),
                at: Some(*at),
                ..Effect::default()
            },
        }
    }
}

#[derive(Debug, Clone)]
struct LeadRow {
    lead_id: Uuid,
    org_id: Uuid,
    upstream_system: String,
    upstream_lead_id: String,
    fields: Value,
    owner_kind: Option<String>,
    owner_id: Option<Uuid>,
    status: String,
    offer_deadline: Option<DateTime<Utc>>,
    held_of: Option<Uuid>,
    received_at: DateTime<Utc>,
    owner_since: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl LeadRow {
    fn received(lead_id: Uuid, event: &LeadEvent) -> Option<LeadRow> {
        let LeadEvent::LeadReceived {
            org_id,
            upstream,
            fields,
            at,
            ..
        } = event
        else {
            return None;
        };
        Some(LeadRow {
            lead_id,
            org_id: org_id.0,
            upstream_system: upstream.system.clone(),
            upstream_lead_id: upstream.lead_id.clone(),
            fields: serde_json::to_value(fields).unwrap_or(Value::Null),
            owner_kind: None,
            owner_id: None,
            status: status::UNASSIGNED.to_string(),
            offer_deadline: None,
            held_of: None,
            received_at: *at,
            owner_since: None,
            updated_at: *at,
        })
    }

    fn apply(&mut self, event: &LeadEvent) {
        let effect = Effect::of(event);
        if let (Some(changed), Value::Object(fields)) = (effect.fields, &mut self.fields) {
            fields.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some((owner, since)) = effect.owner {
            let (kind, id) = owner.map(owner_columns).unzip();
            self.owner_kind = kind.map(str::to_string);
            self.owner_id = id;
            self.owner_since = owner.map(|_| since);
        }
        if let Some((status, deadline, held_of)) = effect.status {
            self.status = status.to_string();
            self.offer_deadline = deadline;
            self.held_of = held_of;
        }
        if let Some(at) = effect.at {
            self.updated_at = at;
        }
    }
}

fn owner_status(owner: &Owner) -> &'static str {
    match owner {
        Owner::PartnerUser(_) => status::OFFERED,
        Owner::Queue(_) => status::QUEUED,
        Owner::InternalUser(_) => status::INTERNAL,
    }
}

/// An owner as stored (kind and id; `None` for nobody) and since when.
type OwnerPatch = (Option<(&'static str, Uuid)>, Option<DateTime<Utc>>);

/// What a batch changes on a lead stored before it: the latest owner and status, and the
/// merged fields.
#[derive(Debug, Default)]
struct Patch {
    /// The new owner (kind and id, `None` for nobody) and since when.
    owner: Option<OwnerPatch>,
    status: Option<Status>,
    fields: Option<serde_json::Map<String, Value>>,
    updated_at: Option<DateTime<Utc>>,
}

impl Patch {
    fn apply(&mut self, event: &LeadEvent) {
        let effect = Effect::of(event);
        if let Some(changed) = effect.fields {
            let fields = self.fields.get_or_insert_with(Default::default);
            fields.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some((owner, since)) = effect.owner {
            self.owner = Some((owner.map(owner_columns), owner.map(|_| since)));
        }
        if effect.status.is_some() {
            self.status = effect.status;
        }
        self.updated_at = effect.at.or(self.updated_at);
    }
}

#[async_trait]
impl Projector for LeadsProjector {
    fn name(&self) -> &'static str {
        super::shared::LEADS
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_leads"]
    }

    /// The partner inbox shows a lead as soon as it can.
    fn settle(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    fn reading(&self) -> leadroute_store::log::Reading {
        leadroute_store::log::Reading {
            types: Some(&["Lead"]),
            raw: false,
        }
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError> {
        // Leads received in this batch are built whole in memory; the others are patched.
        let mut new_rows: HashMap<Uuid, LeadRow> = HashMap::new();
        let mut patches: HashMap<Uuid, Patch> = HashMap::new();
        for event in events {
            let AnyEvent::Lead(lead_event) = &event.event else {
                continue;
            };
            let id = event.aggregate_id;
            if let Some(row) = new_rows.get_mut(&id) {
                row.apply(lead_event);
            } else if let Some(row) = LeadRow::received(id, lead_event) {
                new_rows.insert(id, row);
            } else {
                patches.entry(id).or_default().apply(lead_event);
            }
        }
        if !new_rows.is_empty() {
            insert(conn, new_rows.into_values().collect()).await?;
        }
        if !patches.is_empty() {
            update(conn, patches).await?;
        }
        Ok(())
    }
}

async fn update(conn: &mut PgConnection, patches: HashMap<Uuid, Patch>) -> Result<(), sqlx::Error> {
    let n = patches.len();
    let mut ids = Vec::with_capacity(n);
    let (mut owner_set, mut kinds, mut owners, mut since) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut statuses, mut deadlines, mut fields, mut updated) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut held = Vec::with_capacity(n);
    for (id, patch) in patches {
        ids.push(id);
        owner_set.push(patch.owner.is_some());
        let (owner, owner_since) = patch.owner.unzip();
        let owner = owner.flatten();
        kinds.push(owner.map(|(kind, _)| kind));
        owners.push(owner.map(|(_, id)| id));
        since.push(owner_since.flatten());
        statuses.push(patch.status.map(|s| s.0));
        deadlines.push(patch.status.and_then(|s| s.1));
        held.push(patch.status.and_then(|s| s.2));
        fields.push(patch.fields.map(Value::Object));
        updated.push(patch.updated_at);
    }
    sqlx::query(
        "UPDATE rm_leads AS l SET
             owner_kind = CASE WHEN p.owner_set THEN p.owner_kind ELSE l.owner_kind END,
             owner_id = CASE WHEN p.owner_set THEN p.owner_id ELSE l.owner_id END,
             owner_since = CASE WHEN p.owner_set THEN p.owner_since ELSE l.owner_since END,
             status = coalesce(p.status, l.status),
             offer_deadline = CASE WHEN p.status IS NULL THEN l.offer_deadline ELSE p.offer_deadline END,
             held_of = CASE WHEN p.status IS NULL THEN l.held_of ELSE p.held_of END,
             fields = CASE WHEN p.fields IS NULL THEN l.fields ELSE l.fields || p.fields END,
             updated_at = coalesce(p.updated_at, l.updated_at)
           FROM unnest($1::uuid[], $2::bool[], $3::text[], $4::uuid[], $5::timestamptz[], $6::text[],
                       $7::timestamptz[], $8::jsonb[], $9::timestamptz[], $10::uuid[])
                AS p(lead_id, owner_set, owner_kind, owner_id, owner_since, status, offer_deadline,
                     fields, updated_at, held_of)
          WHERE l.lead_id = p.lead_id",
    )
    .bind(&ids)
    .bind(&owner_set)
    .bind(&kinds)
    .bind(&owners)
    .bind(&since)
    .bind(&statuses)
    .bind(&deadlines)
    .bind(&fields)
    .bind(&updated)
    .bind(&held)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert(conn: &mut PgConnection, rows: Vec<LeadRow>) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    for row in rows {
        columns.push(row);
    }
    sqlx::query(
        "INSERT INTO rm_leads (lead_id, org_id, upstream_system, upstream_lead_id, fields, owner_kind,
                               owner_id, status, received_at, owner_since, updated_at, offer_deadline,
                               held_of)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                              $7::uuid[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
                              $12::timestamptz[], $13::uuid[])",
    )
    .bind(&columns.lead_id)
    .bind(&columns.org_id)
    .bind(&columns.upstream_system)
    .bind(&columns.upstream_lead_id)
    .bind(&columns.fields)
    .bind(&columns.owner_kind)
    .bind(&columns.owner_id)
    .bind(&columns.status)
    .bind(&columns.received_at)
    .bind(&columns.owner_since)
    .bind(&columns.updated_at)
    .bind(&columns.offer_deadline)
    .bind(&columns.held_of)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    lead_id: Vec<Uuid>,
    org_id: Vec<Uuid>,
    upstream_system: Vec<String>,
    upstream_lead_id: Vec<String>,
    fields: Vec<Value>,
    owner_kind: Vec<Option<String>>,
    owner_id: Vec<Option<Uuid>>,
    status: Vec<String>,
    received_at: Vec<DateTime<Utc>>,
    owner_since: Vec<Option<DateTime<Utc>>>,
    updated_at: Vec<DateTime<Utc>>,
    offer_deadline: Vec<Option<DateTime<Utc>>>,
    held_of: Vec<Option<Uuid>>,
}

impl Columns {
    fn push(&mut self, row: LeadRow) {
        self.lead_id.push(row.lead_id);
        self.org_id.push(row.org_id);
        self.upstream_system.push(row.upstream_system);
        self.upstream_lead_id.push(row.upstream_lead_id);
        self.fields.push(row.fields);
        self.owner_kind.push(row.owner_kind);
        self.owner_id.push(row.owner_id);
        self.status.push(row.status);
        self.received_at.push(row.received_at);
        self.owner_since.push(row.owner_since);
        self.updated_at.push(row.updated_at);
        self.offer_deadline.push(row.offer_deadline);
        self.held_of.push(row.held_of);
    }
}
