//! The leads projector: one row per lead with its fields, owner and inbox status, the
//! source of the partner inbox, the queue view and the channel-manager view.
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
use leadroute_domain::lead::LeadEvent;
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
    /// Given to a partner user, who has not taken it yet.
    pub const TO_ACCEPT: &str = "to_accept";
    /// Taken by a partner user (claimed from a queue).
    pub const ACCEPTED: &str = "accepted";
    /// Owned by an internal user.
    pub const INTERNAL: &str = "internal";
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
            received_at: *at,
            owner_since: None,
            updated_at: *at,
        })
    }

    fn apply(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::LeadReceived { .. } => {}
            LeadEvent::LeadUpdated { changed, at, .. }
            | LeadEvent::LeadUpdateStale {
                filled: changed,
                at,
                ..
            } => {
                if let Value::Object(fields) = &mut self.fields {
                    fields.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                self.updated_at = *at;
            }
            LeadEvent::LeadReassigned { change, .. }
            | LeadEvent::LeadEnqueued { change }
            | LeadEvent::LeadRouted { change, .. } => {
                self.set_owner(&change.to, change.at, owner_status(&change.to));
            }
            LeadEvent::LeadOwnerKept { .. } | LeadEvent::LeadNotRouted { .. } => {}
            LeadEvent::LeadClaimed { change } => {
                self.set_owner(&change.to, change.at, status::ACCEPTED)
            }
        }
    }

    fn set_owner(&mut self, owner: &Owner, at: DateTime<Utc>, status: &str) {
        let (kind, id) = owner_columns(owner);
        self.owner_kind = Some(kind.to_string());
        self.owner_id = Some(id);
        self.status = status.to_string();
        self.owner_since = Some(at);
        self.updated_at = at;
    }
}

fn owner_status(owner: &Owner) -> &'static str {
    match owner {
        Owner::PartnerUser(_) => status::TO_ACCEPT,
        Owner::Queue(_) => status::QUEUED,
        Owner::InternalUser(_) => status::INTERNAL,
    }
}

/// What a batch changes on a lead stored before it: the latest owner and merged fields.
#[derive(Debug, Default)]
struct Patch {
    owner: Option<(String, Uuid, &'static str, DateTime<Utc>)>,
    fields: Option<serde_json::Map<String, Value>>,
    updated_at: Option<DateTime<Utc>>,
}

impl Patch {
    fn apply(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::LeadReceived { .. } => {}
            LeadEvent::LeadUpdated { changed, at, .. }
            | LeadEvent::LeadUpdateStale {
                filled: changed,
                at,
                ..
            } => {
                let fields = self.fields.get_or_insert_with(Default::default);
                fields.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.updated_at = Some(*at);
            }
            LeadEvent::LeadReassigned { change, .. }
            | LeadEvent::LeadEnqueued { change }
            | LeadEvent::LeadRouted { change, .. } => {
                self.set_owner(&change.to, change.at, owner_status(&change.to));
            }
            LeadEvent::LeadOwnerKept { .. } | LeadEvent::LeadNotRouted { .. } => {}
            LeadEvent::LeadClaimed { change } => {
                self.set_owner(&change.to, change.at, status::ACCEPTED)
            }
        }
    }

    fn set_owner(&mut self, owner: &Owner, at: DateTime<Utc>, status: &'static str) {
        let (kind, id) = owner_columns(owner);
        self.owner = Some((kind.to_string(), id, status, at));
        self.updated_at = Some(at);
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
    let (mut ids, mut kinds, mut owners, mut statuses) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut since, mut fields, mut updated) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, patch) in patches {
        ids.push(id);
        let owner = patch.owner;
        kinds.push(owner.as_ref().map(|o| o.0.clone()));
        owners.push(owner.as_ref().map(|o| o.1));
        statuses.push(owner.as_ref().map(|o| o.2));
        since.push(owner.as_ref().map(|o| o.3));
        fields.push(patch.fields.map(Value::Object));
        updated.push(patch.updated_at);
    }
    sqlx::query(
        "UPDATE rm_leads AS l SET
             owner_kind = coalesce(p.owner_kind, l.owner_kind),
             owner_id = coalesce(p.owner_id, l.owner_id),
             status = coalesce(p.status, l.status),
             owner_since = coalesce(p.owner_since, l.owner_since),
             fields = CASE WHEN p.fields IS NULL THEN l.fields ELSE l.fields || p.fields END,
             updated_at = coalesce(p.updated_at, l.updated_at)
           FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::timestamptz[])
                AS p(lead_id, owner_kind, owner_id, status, owner_since, fields, updated_at)
          WHERE l.lead_id = p.lead_id",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&owners)
    .bind(&statuses)
    .bind(&since)
    .bind(&fields)
    .bind(&updated)
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
                               owner_id, status, received_at, owner_since, updated_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                              $7::uuid[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])",
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
    }
}
