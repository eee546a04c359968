//! Routing commands: publish a rule set (its targets looked up first), create pools and
//! manage their members, pick a pool member for a lead, and apply a routing decision to a
//! lead. The decisions themselves are made by `crate::routing` from the pure policy.

use super::{AppError, CommandMeta, Commands, Committed};
use leadroute_domain::ids::LeadId;
use leadroute_domain::ids::{OrgId, PoolId};
use leadroute_domain::lead::{Lead, LeadCommand, RouteLead};
use leadroute_domain::org::Org;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::pool::{Pool, PoolCommand};
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rotation::{Member, Slot};
use leadroute_domain::routing::rules::{RuleSetSpec, Target};
use leadroute_domain::routing::{is_assignable, set_verdict, Candidate, Verdict};
use leadroute_domain::rule_set::{RuleSet, RuleSetCommand};
use std::future::Future;
use std::sync::Mutex;
use uuid::Uuid;

/// A member picked from a pool, with the verdicts and the rotation before and after.
#[derive(Debug, Clone)]
pub struct Picked {
    /// Who gets the lead.
    pub member: Member,
    /// Every member's verdict as judged for the pick.
    pub candidates: Vec<Candidate>,
    /// Rotation before the pick (`None` when a repeated trigger got its earlier pick).
    pub before: Option<Vec<Slot>>,
    /// Rotation after the pick (`None` likewise).
    pub after: Option<Vec<Slot>>,
}

impl Commands {
    /// Publish a new version of `org`'s rule set; refused when malformed or naming a target
    /// that does not exist in the org.
    pub async fn publish_rule_set(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        spec: &RuleSetSpec,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let unknown_target = self.unknown_target(org, spec).await?;
            let loaded = self.load::<RuleSet>(org).await?;
            let command = RuleSetCommand::PublishRuleSet {
                org_id: org,
                spec: spec.clone(),
                unknown_target,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// The first target of `spec` that does not exist in `org`, named by its place.
    async fn unknown_target(
        &self,
        org: OrgId,
        spec: &RuleSetSpec,
    ) -> Result<Option<String>, AppError> {
        let places = spec
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("entries[{i}]"), e.target))
            .chain(spec.default_owner.map(|t| ("default_owner".to_string(), t)));
        let mut checked = std::collections::HashSet::new();
        for (place, target) in places {
            if !checked.insert(target) {
                continue;
            }
            let found = match target {
                Target::PartnerUser(id) => {
                    self.load_in_org::<PartnerUser>(org, id).await.map(|_| ())
                }
                Target::Queue(id) => self.load_in_org::<Queue>(org, id).await.map(|_| ()),
                Target::Pool(id) => self.load_in_org::<Pool>(org, id).await.map(|_| ()),
            };
            match found {
                Ok(()) => {}
                Err(AppError::NotFound { what, id, .. }) => {
                    return Ok(Some(format!("{place}: {what} {id} not found")))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Create a round-robin pool in `org`.
    pub async fn create_pool(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool_id: PoolId,
        name: &str,
        cap: Option<u32>,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            self.load_in_org::<Org>(org, org).await?;
            let loaded = self.load::<Pool>(pool_id).await?;
            let command = PoolCommand::CreatePool {
                pool_id,
                org_id: org,
                name: name.to_string(),
                cap,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Add a partner user or queue of `org` to a pool (weight 1 when not given).
    pub async fn add_pool_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        member: Member,
        weight: Option<u32>,
    ) -> Result<Committed, AppError> {
        self.retry(|| async {
            match member {
                Member::PartnerUser(id) => {
                    self.load_in_org::<PartnerUser>(org, id).await.map(|_| ())?
                }
                Member::Queue(id) => self.queue_exists(org, id).await?,
            }
            let loaded = self.load_in_org::<Pool>(org, pool).await?;
            let command = PoolCommand::AddPoolMember {
                member,
                weight,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Remove a member from a pool; the others keep their places.
    pub async fn remove_pool_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        member: Member,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Pool>(meta, org, pool, || PoolCommand::RemovePoolMember {
            member,
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    /// Pick the pool member whose turn it is for `lead` under `trigger`. `candidates` are
    /// the members' verdicts as first judged (from read models); the member a pick would
    /// land on is judged again by `verify` (from the event store) until one holds, and only
    /// then is the pick committed; `Ok(Err(verdicts))` when nobody may take the lead. A
    /// repeated trigger returns its first pick and moves nothing.
    #[allow(clippy::too_many_arguments)]
    pub async fn pick_from_pool<V, Fut>(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        lead: LeadId,
        trigger: Uuid,
        candidates: Vec<Candidate>,
        verify: V,
    ) -> Result<Result<Picked, Vec<Candidate>>, AppError>
    where
        V: Fn(Member) -> Fut,
        Fut: Future<Output = Result<Verdict, AppError>>,
    {
        let judged = Mutex::new(candidates);
        let current = || judged.lock().expect("verdicts lock").clone();
        self.retry(|| async {
            let loaded = self.load_in_org::<Pool>(org, pool).await?;
            let state = loaded.aggregate.clone();
            if let Some(member) = state.picked_for(trigger) {
                return Ok(Ok(Picked {
                    member,
                    candidates: current(),
                    before: None,
                    after: None,
                }));
            }
            loop {
                let Some((member, _)) = state.rotation.pick(|m| is_assignable(&current(), m))
                else {
                    return Ok(Err(current()));
                };
                let verdict = verify(member).await?;
                if verdict == Verdict::Assignable {
                    break;
                }
                set_verdict(&mut judged.lock().expect("verdicts lock"), member, verdict);
            }
            let candidates = current();
            let command = PoolCommand::PickMember {
                lead_id: lead,
                trigger,
                candidates: candidates.clone(),
                at: meta.at,
            };
            let events = leadroute_domain::Decider::decide(&state, command.clone())
                .map_err(super::error::refused)?;
            let mut after = state.clone();
            for event in &events {
                leadroute_domain::Decider::evolve(&mut after, event);
            }
            let Some(member) = after.picked_for(trigger) else {
                return Err(AppError::Store("a pool pick wrote no event".into()));
            };
            self.commit(loaded, command, meta).await?;
            Ok(Ok(Picked {
                member,
                candidates,
                before: Some(state.slots().to_vec()),
                after: Some(after.slots().to_vec()),
            }))
        })
        .await
    }

    /// Apply a routing decision to a lead of `org`, only if the lead is still at
    /// `sequence` (the state the decision was made on); else `Conflict`, and the caller
    /// decides again. A repeated trigger is a no-op.
    pub async fn route_lead_at(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        lead: LeadId,
        route: &RouteLead,
        sequence: usize,
    ) -> Result<Committed, AppError> {
        let loaded = self.load_in_org::<Lead>(org, lead).await?;
        if loaded.current_sequence != sequence {
            return Err(AppError::Conflict {
                aggregate: "Lead",
                attempts: 1,
            });
        }
        self.commit(loaded, LeadCommand::RouteLead(route.clone()), meta)
            .await
    }
}
