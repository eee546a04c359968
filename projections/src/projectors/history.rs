//! The ownership-history projector: one row per owner change (from, to, actor, cause,
//! time), and per lead let go by a decline or a lapse (to nobody: `to_kind` and `to_id`
//! empty), appended in batches with one multi-row insert.

use super::shared::owner_columns;
use crate::projector::{ProjectionError, Projector};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use leadroute_store::log::{AnyEvent, LogEvent};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Builds rm_ownership_history.
pub struct HistoryProjector;

#[derive(Default)]
struct Rows {
    lead_id: Vec<Uuid>,
    sequence: Vec<i64>,
    from_kind: Vec<Option<String>>,
    from_id: Vec<Option<Uuid>>,
    to_kind: Vec<Option<&'static str>>,
    to_id: Vec<Option<Uuid>>,
    actor: Vec<Value>,
    cause: Vec<String>,
    operation_id: Vec<Option<Uuid>>,
    event_type: Vec<String>,
    changed_at: Vec<DateTime<Utc>>,
}

#[async_trait]
impl Projector for HistoryProjector {
    fn name(&self) -> &'static str {
        super::shared::OWNERSHIP_HISTORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_ownership_history"]
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
        let mut rows = Rows::default();
        for event in events {
            let AnyEvent::Lead(lead_event) = &event.event else {
                continue;
            };
            let Some(change) = lead_event.history_line() else {
                continue;
            };
            let from = change.from.as_ref().map(owner_columns);
            let (to_kind, to_id) = change.to.as_ref().map(owner_columns).unzip();
            rows.lead_id.push(event.aggregate_id);
            rows.sequence.push(event.sequence);
            rows.from_kind.push(from.map(|(kind, _)| kind.to_string()));
            rows.from_id.push(from.map(|(_, id)| id));
            rows.to_kind.push(to_kind);
            rows.to_id.push(to_id);
            rows.actor
                .push(serde_json::to_value(&change.actor).unwrap_or(Value::Null));
            rows.cause.push(change.cause.as_str().to_string());
            rows.operation_id
                .push(lead_event.bulk_operation().map(|op| op.0));
            rows.event_type.push(event.event_type.clone());
            rows.changed_at.push(change.at);
        }
        if rows.lead_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO rm_ownership_history
                    (lead_id, sequence, from_kind, from_id, to_kind, to_id, actor, cause, operation_id,
                     event_type, changed_at)
             SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::uuid[], $5::text[], $6::uuid[],
                                  $7::jsonb[], $8::text[], $9::uuid[], $10::text[], $11::timestamptz[])",
        )
        .bind(&rows.lead_id)
        .bind(&rows.sequence)
        .bind(&rows.from_kind)
        .bind(&rows.from_id)
        .bind(&rows.to_kind)
        .bind(&rows.to_id)
        .bind(&rows.actor)
        .bind(&rows.cause)
        .bind(&rows.operation_id)
        .bind(&rows.event_type)
        .bind(&rows.changed_at)
        .execute(conn)
        .await?;
        Ok(())
    }
}
