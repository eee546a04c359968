//! Projection status: each projector's checkpoint and how far it lags behind the log
//! (events behind, seconds behind), for `leadroute projections status` and metrics.

use chrono::{DateTime, Utc};
use leadroute_store::log::{parse_xid, Checkpoint};
use leadroute_store::named;
use sqlx::PgPool;

/// Where one projection stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionStatus {
    /// Projector name.
    pub name: String,
    /// Last applied position (`ZERO` before the first batch).
    pub checkpoint: Checkpoint,
    /// Events applied since position zero.
    pub events_applied: i64,
    /// When the checkpoint last moved.
    pub updated_at: Option<DateTime<Utc>>,
    /// Committed events after the checkpoint.
    pub events_behind: i64,
    /// Age of the oldest event not yet applied (0 when caught up).
    pub seconds_behind: f64,
}

/// The status of each named projection (one without a checkpoint row yet is at zero).
pub async fn status(pool: &PgPool, names: &[&str]) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row: Option<(String, i64, i64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position, events_applied, updated_at
               FROM projection_checkpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?;
        let (checkpoint, events_applied, updated_at) = match row {
            Some((tx, pos, applied, at)) => (
                Checkpoint {
                    transaction_id: parse_xid(&tx)?,
                    global_position: pos,
                },
                applied,
                Some(at),
            ),
            None => (Checkpoint::ZERO, 0, None),
        };
        let (events_behind, seconds_behind) = named::behind(pool, checkpoint).await?;
        out.push(ProjectionStatus {
            name: name.to_string(),
            checkpoint,
            events_applied,
            updated_at,
            events_behind,
            seconds_behind,
        });
    }
    Ok(out)
}

/// Whether an event is stored at exactly `position` (positions that commands answer always
/// are; any other is not a write a reader could wait for).
pub async fn is_written(pool: &PgPool, position: Checkpoint) -> Result<bool, sqlx::Error> {
    named::is_written(pool, position).await
}

/// The first of `names` whose checkpoint has not reached `position` (a projection without a
/// checkpoint row has reached nothing), or `None` when every one has: a reader that wrote at
/// `position` can then read its own write from all of them.
pub async fn first_behind(
    pool: &PgPool,
    names: &[&str],
    position: Checkpoint,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT n.name FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i)
           LEFT JOIN projection_checkpoints c ON c.name = n.name
          WHERE c.name IS NULL OR (c.transaction_id, c.global_position) < ($2::text::xid8, $3)
          ORDER BY n.i LIMIT 1",
    )
    .bind(names)
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .fetch_optional(pool)
    .await
}
