//! Lead commands: receive from upstream (create or update; repeated upstream event ids are
//! no-ops), manual reassignment, enqueue and claim, each with its target facts looked up.

use super::{AppError, CommandMeta, Commands, Committed};
use leadroute_domain::ids::{LeadId, OrgId, Owner, PartnerUserId, QueueId, UpstreamRef};
use leadroute_domain::lead::{ClaimLead, Lead, LeadCommand, LeadFields, ReceiveLead};
use leadroute_domain::org::Org;
use leadroute_domain::queue::Queue;

/// A lead event from upstream.
#[derive(Debug, Clone)]
pub struct NewLead {
    /// Upstream system and lead id.
    pub upstream: UpstreamRef,
    /// The upstream event's id.
    pub upstream_event_id: String,
    /// Field values.
    pub fields: LeadFields,
    /// False when upstream opts out of automatic routing.
    pub route: bool,
}

impl Commands {
    /// Receive a lead event; returns the lead id (derived from org and upstream ids).
    pub async fn receive_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        new: &NewLead,
    ) -> Result<(LeadId, Committed), AppError> {
        let lead_id = LeadId::for_upstream(org, &new.upstream);
        let committed = self
            .retry(|| async {
                self.load_in_org::<Org>(org, org).await?;
                let loaded = self.load::<Lead>(lead_id).await?;
                let command = LeadCommand::ReceiveLead(ReceiveLead {
                    lead_id,
                    org_id: org,
                    upstream: new.upstream.clone(),
                    upstream_event_id: new.upstream_event_id.clone(),
                    fields: new.fields.clone(),
                    route: new.route,
                    actor: meta.actor.clone(),
                    at: meta.at,
                });
                self.commit(loaded, command, meta).await
            })
            .await?;
        Ok((lead_id, committed))
    }

    /// Change a lead's owner by hand; refused with the reason when the target may not
    /// receive it (`inactive`, `never_signed_in`, `partner_account_not_active`).
    pub async fn reassign_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        to: Owner,
        notify: bool,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let loaded = self.load_in_org::<Lead>(org, lead).await?;
            let target = self.owner_assignability(org, to).await?;
            let command = LeadCommand::ReassignLead {
                to,
                target,
                notify,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Put a lead into a queue of the same org.
    pub async fn enqueue_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        queue: QueueId,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let loaded = self.load_in_org::<Lead>(org, lead).await?;
            self.queue_exists(org, queue).await?;
            let command = LeadCommand::EnqueueLead {
                queue_id: queue,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// A partner user claims a lead from a queue; of concurrent claims exactly one wins, the
    /// others are refused with `already_claimed`.
    pub async fn claim_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        queue: QueueId,
        claimant: PartnerUserId,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            let loaded = self.load_in_org::<Lead>(org, lead).await?;
            let queue_state = self.load_in_org::<Queue>(org, queue).await?.aggregate;
            let (user, claimant_assignable) =
                self.partner_user_assignability(org, claimant).await?;
            let claimant_is_member = user
                .account_id
                .is_some_and(|account| queue_state.has_member(claimant, account));
            let command = LeadCommand::ClaimLead(ClaimLead {
                queue_id: queue,
                claimant,
                claimant_is_member,
                claimant_assignable,
                at: meta.at,
            });
            self.commit(loaded, command, meta).await
        })
        .await
    }
}
