//! The leads projector: one row per lead with its fields, owner and inbox status, the
//! source of the partner inbox, the queue view and the channel-manager view.
//!
//! A batch loads the rows it touches in one query, folds its events into them in memory,
//! and writes them back with one multi-row upsert, so its cost per event stays small.

use super::owner_columns;
use crate::log::{AnyEvent, LogEvent};
use crate::runtime::{ProjectionError, Projector};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::Owner;
use leadroute_domain::lead::LeadEvent;
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
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

#[derive(Debug, Clone, FromRow)]
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
            LeadEvent::LeadUpdated { changed, at, .. } => {
                if let Value::Object(fields) = &mut self.fields {
                    fields.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                self.updated_at = *at;
            }
            LeadEvent::LeadReassigned { change, .. } | LeadEvent::LeadEnqueued { change } => {
                self.set_owner(&change.to, change.at, owner_status(&change.to));
            }
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

#[async_trait]
impl Projector for LeadsProjector {
    fn name(&self) -> &'static str {
        "leads"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_leads"]
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError> {
        let lead_events: Vec<(Uuid, &LeadEvent)> = events
            .iter()
            .filter_map(|e| match &e.event {
                AnyEvent::Lead(lead) => Some((e.aggregate_id, lead)),
                _ => None,
            })
            .collect();
        if lead_events.is_empty() {
            return Ok(());
        }
        let mut rows = load_touched(conn, &lead_events).await?;
        for (lead_id, event) in &lead_events {
            match rows.get_mut(lead_id) {
                Some(row) => row.apply(event),
                None => {
                    if let Some(row) = LeadRow::received(*lead_id, event) {
                        rows.insert(*lead_id, row);
                    }
                }
            }
        }
        upsert(conn, rows.into_values().collect()).await?;
        Ok(())
    }
}

/// The stored rows of the leads this batch touches without receiving them.
async fn load_touched(
    conn: &mut PgConnection,
    lead_events: &[(Uuid, &LeadEvent)],
) -> Result<HashMap<Uuid, LeadRow>, sqlx::Error> {
    let mut ids: Vec<Uuid> = lead_events
        .iter()
        .filter(|(_, e)| !matches!(e, LeadEvent::LeadReceived { .. }))
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<LeadRow> = sqlx::query_as("SELECT * FROM rm_leads WHERE lead_id = ANY($1)")
        .bind(&ids)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|row| (row.lead_id, row)).collect())
}

async fn upsert(conn: &mut PgConnection, rows: Vec<LeadRow>) -> Result<(), sqlx::Error> {
    let mut columns = Columns::default();
    for row in rows {
        columns.push(row);
    }
    sqlx::query(
        "INSERT INTO rm_leads (lead_id, org_id, upstream_system, upstream_lead_id, fields, owner_kind,
                               owner_id, status, received_at, owner_since, updated_at)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[],
                              $7::uuid[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])
         ON CONFLICT (lead_id) DO UPDATE SET
             fields = EXCLUDED.fields, owner_kind = EXCLUDED.owner_kind, owner_id = EXCLUDED.owner_id,
             status = EXCLUDED.status, owner_since = EXCLUDED.owner_since, updated_at = EXCLUDED.updated_at",
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
