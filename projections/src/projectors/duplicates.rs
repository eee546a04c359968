//! The duplicate keys (`rm_lead_keys`, part of the workflow projector): each lead's values
//! that can be duplicate keys (an email address, a company domain), per field, normalized (`domain::duplicates::keys_of`), for
//! every lead whatever the org's keys are; the org's keys choose at lookup time. Routing
//! looks a new lead up here (`queries::duplicates`) with an index, not a scan, joined with
//! the leads read model for the matching lead's owner and whether it is open.

use crate::projector::ProjectionError;
use leadroute_domain::duplicates::keys_of;
use leadroute_domain::lead::LeadEvent;
use leadroute_store::log::{AnyEvent, LogEvent};
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Rows of `rm_lead_keys`, as columns.
#[derive(Default)]
struct KeyRows<'a> {
    org: Vec<Uuid>,
    kind: Vec<&'static str>,
    value: Vec<String>,
    field: Vec<&'a str>,
    lead: Vec<Uuid>,
}

/// Apply `events` to rm_lead_keys.
pub(super) async fn apply(
    conn: &mut PgConnection,
    events: &[LogEvent],
) -> Result<(), ProjectionError> {
    // The last value of each (lead, field) the batch set, with the lead's org.
    let mut latest: HashMap<(Uuid, &str), (Uuid, &Value)> = HashMap::new();
    for event in events {
        let AnyEvent::Lead(lead_event) = &event.event else {
            continue;
        };
        let (fields, org) = match lead_event {
            LeadEvent::LeadReceived { fields, org_id, .. } => (fields, org_id.0),
            LeadEvent::LeadUpdated { changed, .. } => match event.org_id {
                Some(org) => (changed, org),
                None => continue,
            },
            LeadEvent::LeadUpdateStale { filled, .. } => match event.org_id {
                Some(org) => (filled, org),
                None => continue,
            },
            _ => continue,
        };
        for (name, value) in fields {
            latest.insert((event.aggregate_id, name.as_str()), (org, value));
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let (mut leads, mut names) = (Vec::new(), Vec::new());
    let mut rows = KeyRows::default();
    for ((lead, field), (org, value)) in latest {
        leads.push(lead);
        names.push(field);
        for (kind, key) in keys_of(value) {
            rows.org.push(org);
            rows.kind.push(kind.as_str());
            rows.value.push(key);
            rows.field.push(field);
            rows.lead.push(lead);
        }
    }
    sqlx::query(
        "DELETE FROM rm_lead_keys k USING unnest($1::uuid[], $2::text[]) AS d(lead_id, field)
          WHERE k.lead_id = d.lead_id AND k.field = d.field",
    )
    .bind(&leads)
    .bind(&names)
    .execute(&mut *conn)
    .await?;
    if !rows.org.is_empty() {
        sqlx::query(
            "INSERT INTO rm_lead_keys (org_id, kind, value, field, lead_id)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[])
             ON CONFLICT DO NOTHING",
        )
        .bind(&rows.org)
        .bind(&rows.kind)
        .bind(&rows.value)
        .bind(&rows.field)
        .bind(&rows.lead)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
