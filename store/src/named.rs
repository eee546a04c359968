//! Named queries on the events table for the readers that are not aggregate loads or the
//! log reader: the only SQL against `events` outside `events.rs` and `log.rs`.

use crate::log::{parse_xid, Checkpoint};
use crate::schema::EVENTS_TABLE;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgPool};

/// The sequence of the last event of an aggregate, `None` when it has none (a rule set's
/// version is its sequence).
pub async fn last_sequence(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT max(sequence) FROM {EVENTS_TABLE} WHERE aggregate_type = $1 AND aggregate_id = $2"
    ))
    .bind(aggregate_type)
    .bind(id)
    .fetch_one(pool)
    .await
}

/// The log position of an aggregate's event at `sequence`, `None` when there is none.
pub async fn position_of(
    pool: &PgPool,
    aggregate_type: &str,
    id: &str,
    sequence: i64,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT transaction_id::text, global_position FROM {EVENTS_TABLE}
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
    ))
    .bind(aggregate_type)
    .bind(id)
    .bind(sequence)
    .fetch_optional(pool)
    .await?;
    row.map(|(tx, global_position)| {
        Ok(Checkpoint {
            transaction_id: parse_xid(&tx)?,
            global_position,
        })
    })
    .transpose()
}

/// Whether an event is stored at exactly `position`.
pub async fn is_written(pool: &PgPool, position: Checkpoint) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {EVENTS_TABLE}
                         WHERE transaction_id = $1::text::xid8 AND global_position = $2)"
    ))
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .fetch_one(pool)
    .await
}

/// How many events are stored after `checkpoint`, and how many seconds ago the oldest of
/// them was recorded (0 when none is).
pub async fn behind(pool: &PgPool, checkpoint: Checkpoint) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT count(*),
                coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at))::float8, 0)
           FROM {EVENTS_TABLE}
          WHERE (transaction_id, global_position) > ($1::text::xid8, $2)"
    ))
    .bind(checkpoint.transaction_id.to_string())
    .bind(checkpoint.global_position)
    .fetch_one(pool)
    .await
}

/// The routing triggers the leads `leads` have decided: the causation ids of their routing
/// decisions (small metadata: no payload is read).
pub async fn decided_triggers(pool: &PgPool, leads: &[String]) -> Result<Vec<String>, sqlx::Error> {
    let triggers: Vec<Option<String>> = sqlx::query_scalar(&format!(
        "SELECT metadata ->> 'causation_id' FROM {EVENTS_TABLE}
          WHERE aggregate_type = 'Lead' AND aggregate_id = ANY($1)
            AND event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted')"
    ))
    .bind(leads)
    .fetch_all(pool)
    .await?;
    Ok(triggers.into_iter().flatten().collect())
}

/// Bulk operations started and neither completed nor cancelled, of every org: each id with
/// the org id its events carry.
pub async fn unfinished_bulk_operations(
    pool: &PgPool,
) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT aggregate_id, min(metadata->>'org_id') FROM {EVENTS_TABLE}
          WHERE aggregate_type = 'BulkOperation'
          GROUP BY aggregate_id
         HAVING bool_and(event_type NOT IN ('BulkOperationCompleted', 'BulkOperationCancelled'))"
    ))
    .fetch_all(pool)
    .await
}

/// One routing decision of a lead, as stored.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StoredRouting {
    /// The lead's event sequence number.
    pub sequence: i64,
    /// `LeadRouted`, `LeadOwnerKept` or `LeadNotRouted`.
    pub event_type: String,
    /// The event, its decision record shown whole.
    pub event: Value,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Every routing decision of the lead `lead`, oldest first.
pub async fn routing_decisions(
    pool: &PgPool,
    lead: &str,
) -> Result<Vec<StoredRouting>, sqlx::Error> {
    let mut rows: Vec<StoredRouting> = sqlx::query_as(&format!(
        "SELECT sequence, event_type, payload -> event_type AS event, recorded_at FROM {EVENTS_TABLE}
          WHERE aggregate_type = 'Lead' AND aggregate_id = $1
            AND event_type IN ('LeadRouted', 'LeadOwnerKept', 'LeadNotRouted')
          ORDER BY sequence"
    ))
    .bind(lead)
    .fetch_all(pool)
    .await?;
    for row in &mut rows {
        leadroute_domain::routing::Decision::expand_in(&mut row.event);
    }
    Ok(rows)
}

/// What was written since `since`: the number of write transactions, and per event type
/// the count, the mean payload size as stored (compressed) and as JSON text. For the
/// benchmarks' reports.
pub async fn written_since(
    pool: &PgPool,
    since: DateTime<Utc>,
) -> Result<(i64, Vec<(String, i64, f64, f64)>), sqlx::Error> {
    let transactions: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT transaction_id) FROM {EVENTS_TABLE} WHERE recorded_at >= $1"
    ))
    .bind(since)
    .fetch_one(pool)
    .await?;
    let sizes = sqlx::query_as(&format!(
        "SELECT event_type, count(*), avg(pg_column_size(payload))::float8,
                avg(octet_length(payload::text))::float8 FROM {EVENTS_TABLE}
          WHERE recorded_at >= $1 GROUP BY event_type ORDER BY event_type"
    ))
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok((transactions, sizes))
}
