//! Dry run: evaluate a draft rule set against leads, writing nothing. The facts are
//! gathered once for all the leads and pools advance in memory, so a window of leads is
//! spread (and counted against caps) as it would be.

use super::route::{targets, Router};
use crate::error::AppError;
use crate::facts::missing;
use leadroute_domain::engine::{resolve, Caps};
use leadroute_domain::ids::{LeadId, OrgId, Owner};
use leadroute_domain::lead::{Lead, RouteOutcome};
use leadroute_domain::routing::rules::ActiveRules;
use leadroute_domain::routing::rules::RuleSetSpec;
use leadroute_domain::routing::{Decision, NotRouted, Trigger};
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
        let mut states = Vec::with_capacity(leads.len());
        for &lead_id in leads {
            states.push(self.commands.state::<Lead>(org, lead_id).await?);
        }
        let (targets, users) = targets(&rules, &states);
        let mut facts = self
            .commands
            .routing_facts(org, targets, users, Caps::Apply)
            .await?;
        let mut out = Vec::with_capacity(leads.len());
        for (&lead_id, lead) in leads.iter().zip(&states) {
            let trigger = Uuid::new_v4();
            let resolution = resolve(&rules, lead_id, lead, trigger, Trigger::Rerun, &facts.known)
                .map_err(missing)?;
            if let Some((pool, command)) = resolution.pick {
                facts
                    .known
                    .apply_pick(pool, command)
                    .map_err(crate::error::refused)?;
            }
            let (owner, kept, not_routed) = match resolution.outcome {
                RouteOutcome::Assign { to, .. } if lead.owner == Some(to) => (None, true, None),
                RouteOutcome::Assign { to, .. } => (Some(to), false, None),
                RouteOutcome::Keep => (None, true, None),
                RouteOutcome::Leave(reason) => (None, false, Some(reason)),
                RouteOutcome::Hold { .. } => (None, false, Some(NotRouted::PossibleDuplicate)),
            };
            out.push(DryRun {
                lead_id,
                owner,
                kept_existing_owner: kept,
                not_routed,
                decision: resolution.decision,
            });
        }
        Ok(out)
    }
}
