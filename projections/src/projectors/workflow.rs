//! The partner-workflow projector: the read models of offers and possible duplicates, all
//! from lead events, in one reader (one log read, one connection) and one transaction per
//! batch:
//! - `rm_offer_timers` (`timers`): pending offers with a deadline, what the scheduler fires;
//! - `rm_offers` (`offers`): every offer and how it ended, for acceptance per account;
//! - `rm_lead_keys` (`duplicates`): every lead's duplicate-key values, what new leads are
//!   matched by.

use super::{duplicates, offers, timers};
use crate::projector::{ProjectionError, Projector};
use async_trait::async_trait;
use leadroute_store::log::LogEvent;
use sqlx::PgConnection;

/// Builds rm_offer_timers, rm_offers and rm_lead_keys.
pub struct WorkflowProjector;

#[async_trait]
impl Projector for WorkflowProjector {
    fn name(&self) -> &'static str {
        super::shared::WORKFLOW
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_offer_timers", "rm_offers", "rm_lead_keys"]
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
        timers::apply(conn, events).await?;
        offers::apply(conn, events).await?;
        duplicates::apply(conn, events).await
    }
}
