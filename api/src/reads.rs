//! Read-your-writes: a command answers with the log position it wrote ([`Written`]); a
//! read given `min_position` waits (briefly, bounded by `--read-wait-ms`) until the
//! projections it reads from have applied that position, or answers 503
//! `projection_behind` saying which one is behind. A position no write answered is refused
//! (422) rather than waited for.

use super::problem::ApiError;
use crate::state::ApiState;
use leadroute_app::Committed;
use leadroute_projections::status;
use leadroute_store::log::Checkpoint;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// What a command wrote.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Written {
    /// The id of the resource the command created or changed.
    pub id: Uuid,
    /// Events written: 0 when the command changed nothing (a repeated upstream event).
    pub events: usize,
    /// Log position of the write (`TX/POS`); pass it as `min_position` to read it back.
    pub position: Option<String>,
}

impl ApiState {
    /// The answer to a command that wrote `committed` on resource `id`.
    pub(crate) async fn written(
        &self,
        id: Uuid,
        committed: Committed,
    ) -> Result<Written, ApiError> {
        // The command has committed: failing to look up its position must not turn the
        // answer into an error a client would retry.
        let position = self
            .commands
            .position(&committed)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "log position of a committed command unknown");
                None
            });
        Ok(Written {
            id,
            events: committed.events,
            position: position.map(|p| p.to_string()),
        })
    }

    /// Wait until every one of `projections` reached `min.min_position`, if given.
    pub(crate) async fn caught_up(
        &self,
        projections: &[&str],
        min: &MinPosition,
    ) -> Result<(), ApiError> {
        let Some(text) = &min.min_position else {
            return Ok(());
        };
        let position: Checkpoint = text
            .parse()
            .map_err(|e: String| ApiError::invalid("query.min_position", e))?;
        let deadline = Instant::now() + self.read_wait;
        let mut checked = false;
        loop {
            let behind = status::first_behind(&self.pool, projections, position).await?;
            if behind.is_some() && !std::mem::replace(&mut checked, true) {
                // Waiting only makes sense for a position some write returned.
                if !status::is_written(&self.pool, position).await? {
                    return Err(ApiError::invalid(
                        "query.min_position",
                        format!("no write is at position {position}; pass a `position` a command answered"),
                    ));
                }
            }
            match behind {
                None => return Ok(()),
                Some(projection) if Instant::now() >= deadline => {
                    return Err(ApiError::ProjectionBehind {
                        projection,
                        position: text.clone(),
                    })
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

/// A page size given as `?limit=`: `default` when absent, refused outside 1 to `max`.
pub(crate) fn page_limit(given: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = given.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            format!("must be 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// `?min_position=TX/POS`: read only once the read models include that write.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MinPosition {
    /// A `position` returned by a command (`TX/POS`); the read waits until it is applied.
    #[param(pattern = r"^[0-9]+/[0-9]+$")]
    pub min_position: Option<String>,
}
