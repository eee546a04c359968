//! Quarantine: events one log reader (a projector or the publisher) could not handle, set
//! aside for that reader with the reason so that it goes on with the events after them.
//! Listing, retrying (apply it now, through the same projector) and skipping; counts for
//! `projections status` and `audit verify`. The table lives in `public` whichever copy a
//! reader writes, so a rebuild sets aside exactly what the live projector set aside.

use crate::projector::{self, ProjectionError, Projector};
use chrono::{DateTime, Utc};
use leadroute_store::log::{self, Checkpoint, LogEvent};
use sqlx::{Connection, FromRow, PgConnection, PgPool};
use std::collections::HashSet;
use uuid::Uuid;

/// The quarantine table.
pub const TABLE: &str = "public.projection_quarantine";

/// One quarantined event.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct Quarantined {
    /// The reader that set it aside.
    pub projection: String,
    /// The event.
    pub event_id: Uuid,
    /// Its commit-order position, `TX/POS`.
    pub position: String,
    /// Its aggregate type.
    pub aggregate_type: String,
    /// Its event type.
    pub event_type: String,
    /// Its org, if the event names one.
    pub org_id: Option<Uuid>,
    /// Why the reader could not handle it.
    pub reason: String,
    /// When it was set aside.
    pub quarantined_at: DateTime<Utc>,
    /// `retried` or `skipped` once resolved.
    pub resolution: Option<String>,
}

/// Set `event` aside for `projection` inside the caller's transaction (a repeat keeps the
/// first record).
pub(crate) async fn record(
    conn: &mut PgConnection,
    projection: &str,
    event: &LogEvent,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {TABLE} (projection, event_id, transaction_id, global_position,
                              aggregate_type, event_type, org_id, reason)
         VALUES ($1, $2, $3::text::xid8, $4, $5, $6, $7, $8)
         ON CONFLICT (projection, event_id) DO NOTHING"
    ))
    .bind(projection)
    .bind(event.event_id)
    .bind(event.position.transaction_id.to_string())
    .bind(event.position.global_position)
    .bind(&event.aggregate_type)
    .bind(&event.event_type)
    .bind(event.org_id)
    .bind(leadroute_domain::limits::storable(reason, 2_000))
    .execute(conn)
    .await
    .map(|_| ())
}

/// Of `ids`, those `projection` set aside and nobody retried: they stay aside when the
/// reader meets them again (a rebuild, a re-read after a failure).
pub(crate) async fn set_aside(
    conn: &mut PgConnection,
    projection: &str,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let rows: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT event_id FROM {TABLE}
          WHERE projection = $1 AND event_id = ANY($2)
            AND resolution IS DISTINCT FROM 'retried'"
    ))
    .bind(projection)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Quarantined events, oldest first: open ones only unless `all`.
pub async fn list(pool: &PgPool, all: bool) -> Result<Vec<Quarantined>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT projection, event_id, transaction_id::text || '/' || global_position AS position,
                aggregate_type, event_type, org_id, reason, quarantined_at, resolution
           FROM {TABLE} WHERE $1 OR resolution IS NULL
          ORDER BY transaction_id, global_position, projection"
    ))
    .bind(all)
    .fetch_all(pool)
    .await
}

/// Open quarantined events of `projection`.
pub async fn open_count(pool: &PgPool, projection: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {TABLE} WHERE projection = $1 AND resolution IS NULL"
    ))
    .bind(projection)
    .fetch_one(pool)
    .await
}

/// What an operator's resolution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Done.
    Done,
    /// The event is not quarantined (open) for that projection.
    NotQuarantined,
}

/// Skip a quarantined event for good (the reader never applies it).
pub async fn skip(
    pool: &PgPool,
    projection: &str,
    event_id: Uuid,
) -> Result<Resolved, sqlx::Error> {
    let updated = sqlx::query(&format!(
        "UPDATE {TABLE} SET resolution = 'skipped', resolved_at = clock_timestamp()
          WHERE projection = $1 AND event_id = $2 AND resolution IS NULL"
    ))
    .bind(projection)
    .bind(event_id)
    .execute(pool)
    .await?;
    Ok(match updated.rows_affected() {
        0 => Resolved::NotQuarantined,
        _ => Resolved::Done,
    })
}

/// Apply a quarantined event now through `projector` (after its cause was fixed), under the
/// projector's checkpoint lock, and mark it retried; if it fails again nothing changes and
/// the error says why. It applies after the events that followed it, which the operator
/// accepts by retrying.
pub async fn retry(
    pool: &PgPool,
    projector: &dyn Projector,
    event_id: Uuid,
) -> Result<Resolved, ProjectionError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    projector::lock_checkpoint(&mut tx, projector.name()).await?;
    let position: Option<(String, i64)> = sqlx::query_as(&format!(
        "SELECT transaction_id::text, global_position FROM {TABLE}
          WHERE projection = $1 AND event_id = $2 AND resolution IS NULL"
    ))
    .bind(projector.name())
    .bind(event_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((tx_id, global_position)) = position else {
        return Ok(Resolved::NotQuarantined);
    };
    let position = Checkpoint {
        transaction_id: log::parse_xid(&tx_id)?,
        global_position,
    };
    let Some(event) = log::read_at(&mut tx, position, projector.reading()).await? else {
        return Ok(Resolved::NotQuarantined);
    };
    projector::apply_checked(&mut tx, projector, std::slice::from_ref(&event)).await?;
    sqlx::query(&format!(
        "UPDATE {TABLE} SET resolution = 'retried', resolved_at = clock_timestamp()
          WHERE projection = $1 AND event_id = $2"
    ))
    .bind(projector.name())
    .bind(event_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Resolved::Done)
}
