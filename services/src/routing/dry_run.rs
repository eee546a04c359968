//! Dry run: evaluate a draft rule set against leads, writing nothing. Pools advance in
//! memory from their current state, so a window of leads is spread as it would be.

use super::{ActiveRules, PickRequest, Router};
use crate::app::{AppError, CommandMeta};
use leadroute_domain::ids::{Actor, LeadId, OrgId, Owner, PoolId};
use leadroute_domain::lead::{Lead, RouteOutcome};
use leadroute_domain::pool::Pool;
use leadroute_domain::routing::rules::RuleSetSpec;
use leadroute_domain::routing::{Decision, NotRouted, Trigger};
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// What the draft would do with one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    /// The lead.
    pub lead_id: LeadId,
    /// The new owner, if the lead would move.
    pub owner: Option<Owner>,
    /// The lead would keep its owner.
    pub kept_existing_owner: bool,
    /// Why it would not be routed.
    pub not_routed: Option<NotRouted>,
    /// The decision record it would carry.
    pub decision: Decision,
}

impl Router {
    /// Evaluate `draft` (already checked with `RuleSetSpec::problem`) against `leads` of
    /// `org`, in order, writing nothing.
    pub async fn dry_run(
        &self,
        org: OrgId,
        draft: &RuleSetSpec,
        leads: &[LeadId],
    ) -> Result<Vec<DryRun>, AppError> {
        let rules = ActiveRules::compile(0, draft);
        let pools: Mutex<HashMap<PoolId, Pool>> = Mutex::default();
        let meta = CommandMeta::now(Actor::System(super::ROUTER.into()));
        let mut out = Vec::with_capacity(leads.len());
        for &lead_id in leads {
            let lead = self.commands.state::<Lead>(org, lead_id).await?;
            let pick = PickRequest {
                org,
                lead_id,
                trigger: Uuid::new_v4(),
                meta: &meta,
                simulated: Some(&pools),
            };
            let (decision, outcome) = self
                .decide_with(&rules, &lead, Trigger::Rerun, pick)
                .await?;
            let (owner, kept, not_routed) = match outcome {
                RouteOutcome::Assign { to, .. } if lead.owner == Some(to) => (None, true, None),
                RouteOutcome::Assign { to, .. } => (Some(to), false, None),
                RouteOutcome::Keep => (None, true, None),
                RouteOutcome::Leave(reason) => (None, false, Some(reason)),
            };
            out.push(DryRun {
                lead_id,
                owner,
                kept_existing_owner: kept,
                not_routed,
                decision,
            });
        }
        Ok(out)
    }
}
