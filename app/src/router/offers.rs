//! Leads the router takes back: a partner user declines the lead offered to them, the
//! offer's deadline passes (the scheduler's recall), or a lead held as a possible
//! duplicate is released to be routed anyway. Either way the lead is let go and
//! routed again under the current rules in the same transaction, never to a partner user
//! who declined it or let an offer of it lapse (the engine judges them `declined_before` /
//! `lapsed_before`; when nobody is left the entry's fallback takes it, or it stays unrouted
//! with `offerees_exhausted`). In an org without a published rule set, or when the rules
//! name a target gone since, the lead is only let go.

use super::Router;
use crate::commands::{Batch, CommandMeta, Committed};
use crate::error::AppError;
use chrono::{DateTime, Utc};
use leadroute_domain::ids::{LeadId, OrgId, PartnerUserId};
use leadroute_domain::lead::{DeclineLead, HoldResolution, Lead, LeadCommand};
use leadroute_domain::org::Org;
use leadroute_domain::routing::Trigger;
use uuid::Uuid;

/// A decline as the partner user gives it.
#[derive(Debug, Clone)]
pub struct Decline {
    /// The partner user.
    pub by: PartnerUserId,
    /// A reason code of the org's list.
    pub reason: String,
    /// Free text (required with `other`).
    pub note: Option<String>,
}

impl Router {
    /// `decline.by` declines `lead`, which is routed again at once. Refused with
    /// `not_offered`, `already_accepted`, `unknown_decline_reason`, `decline_note_required`
    /// or `invalid_note`.
    pub async fn decline_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        decline: &Decline,
    ) -> Result<Committed, AppError> {
        let workflow = self.commands.state::<Org>(org, org).await?.workflow;
        let command = || {
            LeadCommand::DeclineLead(DeclineLead {
                by: decline.by,
                reason: decline.reason.clone(),
                note: decline.note.clone(),
                reason_known: workflow.declines_with(decline.reason.trim()),
                at: meta.at,
            })
        };
        self.let_go_and_route(meta, org, lead, command, Trigger::Declined)
            .await
    }

    /// Recall `lead` if it is still offered with `deadline` and that has passed, and route
    /// it again; otherwise (accepted, declined, offered again since, a timer fired twice)
    /// nothing is written.
    pub async fn lapse_offer(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        deadline: DateTime<Utc>,
    ) -> Result<Committed, AppError> {
        let command = || LeadCommand::LapseOffer {
            deadline,
            actor: meta.actor.clone(),
            at: meta.at,
        };
        self.let_go_and_route(meta, org, lead, command, Trigger::Lapsed)
            .await
    }

    /// Resolve `lead`'s hold as a possible duplicate: route it anyway (routed at once, not
    /// matched against open leads again), merge it into the lead it matched, or reject it.
    /// Refused with `not_held` when it is not held.
    pub async fn resolve_hold(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        resolution: HoldResolution,
    ) -> Result<Committed, AppError> {
        let command = || LeadCommand::ResolveHold {
            resolution,
            actor: meta.actor.clone(),
            at: meta.at,
        };
        match resolution {
            HoldResolution::RouteAnyway => {
                self.let_go_and_route(meta, org, lead, command, Trigger::Released)
                    .await
            }
            HoldResolution::Merge | HoldResolution::Reject => {
                self.commands
                    .on_existing::<Lead>(meta, org, lead, command)
                    .await
            }
        }
    }

    /// Decide `command` (which lets the lead go, or does nothing) and, when it wrote
    /// anything, route the lead again for `kind`, all in one transaction.
    async fn let_go_and_route(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead_id: LeadId,
        command: impl Fn() -> LeadCommand,
        kind: Trigger,
    ) -> Result<Committed, AppError> {
        self.commands
            .retry(|| async {
                let mut lead = self.commands.load_in_org::<Lead>(org, lead_id).await?;
                let mut batch = Batch::default();
                let let_go = batch.decide(&mut lead, command(), meta).await?.len();
                if let_go == 0 {
                    return Ok(Committed::none(&lead));
                }
                // No rule set, or a target gone since the rules were published (found
                // before anything was added to the batch): the lead is only let go,
                // unrouted; a re-run reports why.
                let routed = match self.rules(org).await? {
                    Some(rules) => {
                        let trigger = Uuid::new_v4();
                        match self
                            .decide(&mut batch, &mut lead, &rules, trigger, kind, meta)
                            .await
                        {
                            Ok(decided) => Some(decided),
                            Err(AppError::NotFound { .. }) => None,
                            Err(other) => return Err(other),
                        }
                    }
                    None => None,
                };
                match routed {
                    Some((routed, facts)) => {
                        self.commit(batch, &lead, (let_go + routed, facts)).await
                    }
                    None => {
                        let mut committed = Committed::none(&lead);
                        committed.events = let_go;
                        committed.position = self.commands.commit_batch(batch).await?.1;
                        Ok(committed)
                    }
                }
            })
            .await
    }
}
