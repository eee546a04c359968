//! Lead commands: receive from upstream (create or update; repeated upstream event ids are
//! no-ops), manual reassignment, enqueue, claim and accepting an offer, each with its target
//! facts looked up. Declining and recalling an offer route the lead again, so they are the
//! router's (`router::offers`).

use crate::commands::Batch;
use crate::commands::Loaded;
use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::engine::Caps;
use leadroute_domain::ids::{LeadId, OrgId, Owner, PartnerUserId, QueueId, UpstreamRef};
use leadroute_domain::lead::{ClaimLead, Lead, LeadCommand, LeadFields, ReceiveLead};
use leadroute_domain::org::Org;
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rules::Target;
use std::collections::{HashMap, HashSet};

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
    /// When it happened upstream, if known: an event older than the newest applied to its
    /// lead is stale (recorded, changes nothing).
    pub occurred_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The owner the CRM already gave the lead (a partner user or a queue of the org): a
    /// new lead gets it as its first owner (cause `import`) and is not routed.
    pub owner: Option<Owner>,
}

impl NewLead {
    /// The lead id of each event of `org`.
    pub(crate) fn lead_ids(org: OrgId, leads: &[NewLead]) -> Vec<LeadId> {
        leads
            .iter()
            .map(|new| LeadId::for_upstream(org, &new.upstream))
            .collect()
    }

    /// The `ReceiveLead` command of this event for `lead_id` of `org`.
    pub(crate) fn receive(
        &self,
        lead_id: LeadId,
        org: OrgId,
        meta: &CommandMeta,
        known: &HashSet<Owner>,
    ) -> LeadCommand {
        LeadCommand::ReceiveLead(ReceiveLead {
            lead_id,
            org_id: org,
            upstream: self.upstream.clone(),
            upstream_event_id: self.upstream_event_id.clone(),
            fields: self.fields.clone(),
            route: self.route,
            occurred_at: self.occurred_at,
            owner: self.owner,
            owner_known: self.owner.is_some_and(|owner| known.contains(&owner)),
            actor: meta.actor.clone(),
            at: meta.at,
        })
    }
}

impl Commands {
    /// Load the leads the upstream events of `ids` apply to: each lead, or for a lead
    /// merged into another (a resolved possible duplicate) that other lead, whose upstream
    /// events then update it. Answers the loaded leads by id and, per entry of `ids`, the
    /// lead its event applies to.
    pub(crate) async fn load_receiving(
        &self,
        ids: &[LeadId],
    ) -> Result<(HashMap<String, Loaded<Lead>>, Vec<LeadId>), AppError> {
        let keys: Vec<String> = ids
            .iter()
            .map(LeadId::to_string)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut loaded = self.load_many::<Lead>(&keys).await?;
        let targets: Vec<LeadId> = ids
            .iter()
            .map(|id| loaded[&id.to_string()].aggregate.merged_into.unwrap_or(*id))
            .collect();
        let more: Vec<String> = targets
            .iter()
            .map(LeadId::to_string)
            .filter(|key| !loaded.contains_key(key))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !more.is_empty() {
            loaded.extend(self.load_many::<Lead>(&more).await?);
        }
        Ok((loaded, targets))
    }

    /// The owners `leads` arrive with that are partner users or queues of `org`, found as
    /// routing finds its targets (no query when no lead names an owner).
    pub(crate) async fn known_owners(
        &self,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<HashSet<Owner>, AppError> {
        let targets: Vec<Target> = leads
            .iter()
            .filter_map(|new| match new.owner? {
                Owner::PartnerUser(user) => Some(Target::PartnerUser(user)),
                Owner::Queue(queue) => Some(Target::Queue(queue)),
                Owner::InternalUser(_) => None,
            })
            .collect();
        if targets.is_empty() {
            return Ok(HashSet::new());
        }
        let facts = self
            .routing_facts(org, targets, [], Caps::Ignore)
            .await?
            .known;
        let users = facts.users.into_keys().map(Owner::PartnerUser);
        Ok(users
            .chain(facts.queues.into_iter().map(Owner::Queue))
            .collect())
    }

    /// Receive a lead event; returns the lead id (derived from org and upstream ids, or
    /// the lead it was merged into).
    pub async fn receive_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        new: &NewLead,
    ) -> Result<(LeadId, Committed), AppError> {
        let upstream_id = LeadId::for_upstream(org, &new.upstream);
        let mut applied_to = upstream_id;
        let committed = self
            .retry(|| async {
                self.load_in_org::<Org>(org, org).await?;
                let known = self.known_owners(org, std::slice::from_ref(new)).await?;
                let (mut loaded, targets) = self.load_receiving(&[upstream_id]).await?;
                let lead_id = targets[0];
                let loaded = loaded.remove(&lead_id.to_string()).expect("loaded");
                let command = new.receive(lead_id, org, meta, &known);
                self.commit(loaded, command, meta).await
            })
            .await?;
        if let Ok(id) = committed.aggregate_id.parse() {
            applied_to = LeadId(id);
        }
        Ok((applied_to, committed))
    }

    /// Receive many lead events in one transaction, each exactly as [`receive_lead`] would
    /// (a repeated upstream event id writes nothing; events for one lead apply in order).
    /// Answers per event: the lead id and the number of events written, or the refusal.
    /// A lost race on any lead retries the whole batch.
    ///
    /// [`receive_lead`]: Commands::receive_lead
    pub async fn receive_leads(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<Vec<(LeadId, Result<usize, AppError>)>, AppError> {
        let ids = NewLead::lead_ids(org, leads);
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let known = self.known_owners(org, leads).await?;
            let (mut loaded, targets) = self.load_receiving(&ids).await?;
            let mut batch = Batch::default();
            let mut answers = Vec::with_capacity(leads.len());
            for (new, lead_id) in leads.iter().zip(&targets) {
                let lead = loaded
                    .get_mut(&lead_id.to_string())
                    .expect("every lead is loaded");
                let command = new.receive(*lead_id, org, meta, &known);
                let answer = match batch.decide(lead, command, meta).await {
                    Err(refused @ AppError::Refused { .. }) => Err(refused),
                    Err(other) => return Err(other),
                    Ok(written) => Ok(written.len()),
                };
                answers.push((*lead_id, answer));
            }
            self.commit_batch(batch).await?;
            Ok(answers)
        })
        .await
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
            let workflow = self.state::<Org>(org, org).await?.workflow;
            let (deadline, remind_at) = workflow.due_for(to, None, meta.at);
            let command = LeadCommand::ReassignLead {
                deadline,
                remind_at,
                to,
                target,
                notify,
                operation: None,
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

    /// The partner user a lead is offered to accepts it; accepting again is a no-op, anyone
    /// else is refused with `not_offered`.
    pub async fn accept_lead(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        by: PartnerUserId,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Lead>(meta, org, lead, || LeadCommand::AcceptLead {
            by,
            at: meta.at,
        })
        .await
    }

    /// Remind the offeree of `lead` if it is still offered with `deadline`, not reminded
    /// yet, and the reminder time came (the scheduler's command); else nothing is written.
    pub async fn remind_offer(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        deadline: chrono::DateTime<chrono::Utc>,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Lead>(meta, org, lead, || LeadCommand::RemindOffer {
            deadline,
            at: meta.at,
        })
        .await
    }
}
