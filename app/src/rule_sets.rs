//! Routing commands: publish a rule set (its targets looked up first), create pools and
//! manage their members. Routing decisions are the engine's (`leadroute_domain::engine`),
//! applied by `crate::routing` from the facts `facts.rs` gathers.

use crate::commands::{CommandMeta, Commands, Committed};
use crate::error::AppError;
use leadroute_domain::ids::{OrgId, PoolId};
use leadroute_domain::org::Org;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::pool::{Pool, PoolCommand};
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::{RuleSetSpec, Target};
use leadroute_domain::rule_set::{RuleSet, RuleSetCommand};

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
            .flat_map(|(i, e)| {
                let fallback = e.fallback.map(|t| (format!("entries[{i}].fallback"), t));
                std::iter::once((format!("entries[{i}]"), e.target)).chain(fallback)
            })
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

    /// Add a partner user or queue of `org` to a pool (weight 1 when not given), with its
    /// own cap of open leads if given.
    pub async fn add_pool_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        member: Member,
        weight: Option<u32>,
        cap: Option<u32>,
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
                cap,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            self.commit(loaded, command, meta).await
        })
        .await
    }

    /// Change a pool member's weight or own cap (`Some(None)`: the pool's cap again); it
    /// keeps its place. A change to what it already has writes nothing.
    pub async fn change_pool_member(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        member: Member,
        weight: Option<u32>,
        cap: Option<Option<u32>>,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Pool>(meta, org, pool, || PoolCommand::ChangePoolMember {
            member,
            weight,
            cap,
            actor: meta.actor.clone(),
            at: meta.at,
        })
        .await
    }

    /// Set how long a pool's offers stand (`None`: the org's default); refused with
    /// `invalid_deadline` when out of bounds.
    pub async fn set_pool_acceptance_deadline(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        pool: PoolId,
        deadline: Option<leadroute_domain::deadline::Deadline>,
    ) -> Result<Committed, AppError> {
        self.on_existing::<Pool>(meta, org, pool, || PoolCommand::SetAcceptanceDeadline {
            deadline,
            actor: meta.actor.clone(),
            at: meta.at,
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
}
