//! Gathering routing facts: what the routing engine (`leadroute_domain::engine`) needs to
//! know about the targets of some leads, read from the event store (pools, partner users
//! with their accounts, queues: this process's cached states plus the events committed
//! since, one query per kind) and, for capped pools only, the members' open leads as
//! committed (the store keeps them in the commit's transaction). Every path that routes
//! gathers here and nowhere else; the decision is the engine's. A pick for a capped member
//! is committed with its cap, so two processes picking at once cannot both fill the last
//! place: the second commit is a lost race and is decided again.

use crate::commands::{Batch, CommandMeta, Commands};
use crate::error::AppError;
use crate::in_org::InOrg;
use leadroute_domain::duplicates;
use leadroute_domain::engine::{Caps, KnownFacts, Resolution};
use leadroute_domain::ids::{LeadId, OrgId, PartnerAccountId, PartnerUserId, PoolId, QueueId};
use leadroute_domain::lead::LeadFields;
use leadroute_domain::lead::{LeadCommand, RouteLead};
use leadroute_domain::org::{Org, PartnerWorkflow};
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::pool::{Pool, PoolCommand, PoolEvent};
use leadroute_domain::queue::{Queue, QueueMember};
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::ActiveRules;
use leadroute_domain::routing::rules::Target;
use leadroute_domain::routing::RouteOutcome;
use leadroute_projections::projectors::owner_from_columns;
use leadroute_projections::queries;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// Facts gathered for routing, with the stored sequence of each pool (its picks are
/// committed against it).
pub(crate) struct RoutingFacts {
    /// The org they are about.
    org: OrgId,
    /// Whether caps apply to the picks (their commits then check them).
    caps: Caps,
    /// The facts, advanced by each pick applied.
    pub(crate) known: KnownFacts,
    /// Each pool's sequence, advanced with the picks queued in a batch.
    sequences: HashMap<PoolId, usize>,
    /// How offers work in the org (their deadlines).
    workflow: PartnerWorkflow,
}

impl Commands {
    /// The facts about `targets` and the partner users `users` of `org`, judged now. A
    /// pool's members are gathered with it; a target of another org is left out (it is
    /// missing to the engine). With [`Caps::Apply`], the open leads of capped pools'
    /// members are counted.
    pub(crate) async fn routing_facts(
        &self,
        org: OrgId,
        targets: impl IntoIterator<Item = Target>,
        users: impl IntoIterator<Item = PartnerUserId>,
        caps: Caps,
    ) -> Result<RoutingFacts, AppError> {
        let mut users: BTreeSet<PartnerUserId> = users.into_iter().collect();
        let mut queues: BTreeSet<QueueId> = BTreeSet::new();
        let mut pools: BTreeSet<PoolId> = BTreeSet::new();
        for target in targets {
            match target {
                Target::PartnerUser(user) => users.insert(user),
                Target::Queue(queue) => queues.insert(queue),
                Target::Pool(pool) => pools.insert(pool),
            };
        }
        let mut facts = RoutingFacts {
            org,
            caps,
            known: KnownFacts::at(chrono::Utc::now()),
            sequences: HashMap::new(),
            workflow: self.state::<Org>(org, org).await?.workflow,
        };
        let mut capped: Vec<Member> = Vec::new();
        for (id, pool) in self.load_many_cached::<Pool>(&keys(&pools)).await? {
            if pool.aggregate.org_id != Some(org) {
                continue;
            }
            for slot in pool.aggregate.slots() {
                match slot.member {
                    Member::PartnerUser(user) => users.insert(user),
                    Member::Queue(queue) => queues.insert(queue),
                };
                if pool.aggregate.capped(slot.member) && caps == Caps::Apply {
                    capped.push(slot.member);
                }
            }
            let id: PoolId = id.parse().map_err(|e| AppError::Store(Box::new(e)))?;
            facts.sequences.insert(id, pool.current_sequence);
            facts.known.pools.insert(id, pool.aggregate);
        }
        // Queues before users: a queue's members are judged with the other users.
        let loaded_queues = self.load_many_cached::<Queue>(&keys(&queues)).await?;
        let queues: Vec<(QueueId, &Queue)> = queues
            .into_iter()
            .map(|q| (q, &loaded_queues[&q.to_string()].aggregate))
            .filter(|(_, queue)| queue.org_id == Some(org))
            .collect();
        let mut accounts: BTreeSet<PartnerAccountId> = BTreeSet::new();
        for member in queues.iter().flat_map(|(_, queue)| &queue.members) {
            match member {
                QueueMember::PartnerUser(user) => users.insert(*user),
                QueueMember::PartnerAccount(account) => accounts.insert(*account),
            };
        }
        let loaded_users = self.load_many_cached::<PartnerUser>(&keys(&users)).await?;
        accounts.extend(loaded_users.values().filter_map(|u| u.aggregate.account_id));
        let accounts = self
            .load_many_cached::<PartnerAccount>(&keys(&accounts))
            .await?;
        let active = |account: PartnerAccountId| {
            accounts
                .get(&account.to_string())
                .is_some_and(|a| a.aggregate.active && a.aggregate.org_id == Some(org))
        };
        for user_id in users {
            let user = &loaded_users[&user_id.to_string()].aggregate;
            if user.org_id != Some(org) {
                continue;
            }
            let account_active = user.account_id.is_some_and(active);
            facts
                .known
                .users
                .insert(user_id, user.standing(account_active));
        }
        // A queue is claimable while one of its members may claim from it: a member user
        // who may receive leads (a pause does not stop claiming), or a member account
        // that is an active partner.
        for (id, queue) in queues {
            let claimable = queue.members.iter().any(|member| match member {
                QueueMember::PartnerUser(user) => facts
                    .known
                    .users
                    .get(user)
                    .is_some_and(|standing| standing.assignability().is_ok()),
                QueueMember::PartnerAccount(account) => active(*account),
            });
            facts.known.queues.insert(id);
            if !claimable {
                facts.known.unclaimable.insert(id);
            }
        }
        if !capped.is_empty() {
            let ids: Vec<Uuid> = capped.iter().map(|m| member_uuid(*m)).collect();
            let open = self.store.open_leads(org.0, &ids).await?;
            for member in capped {
                let held = open.get(&member_uuid(member)).copied().unwrap_or(0);
                facts.known.open.insert(member, held);
            }
        }
        Ok(facts)
    }
}

impl Commands {
    /// Learn which of the new `leads` (id and fields) match an open lead a partner owns
    /// by the org's duplicate keys: the engine holds those (`possible_duplicate`).
    pub(crate) async fn find_duplicates<'a>(
        &self,
        facts: &mut RoutingFacts,
        leads: impl IntoIterator<Item = (LeadId, &'a LeadFields)>,
    ) -> Result<(), AppError> {
        let keys = &facts.workflow.duplicate_keys;
        let lookups: Vec<(Uuid, Vec<(&str, String)>)> = leads
            .into_iter()
            .map(|(lead, fields)| {
                let found = duplicates::lookups(keys, fields)
                    .into_iter()
                    .map(|(kind, value)| (kind.as_str(), value))
                    .collect();
                (lead.0, found)
            })
            .collect();
        let fields: Vec<(&str, &str)> = keys
            .iter()
            .map(|key| (key.kind.as_str(), key.field.as_str()))
            .collect();
        let found = queries::duplicates(&self.pool, facts.org, &fields, &lookups)
            .await
            .map_err(|e| AppError::Store(Box::new(e)))?;
        for (lead, of, kind, owner) in found {
            if let Some(owner) = owner_from_columns(&kind, owner) {
                facts
                    .known
                    .duplicates
                    .insert(LeadId(lead), (LeadId(of), owner));
            }
        }
        Ok(())
    }
}

impl RoutingFacts {
    /// Queue `resolution`'s pool pick and cap guards in `batch`, and answer the command
    /// that applies its decision for `trigger` of a lead: an offer to a partner user
    /// carries the deadline of the matched entry (else its pool's, else the org's) and its
    /// reminder time.
    pub(crate) fn settle(
        &mut self,
        batch: &mut Batch,
        rules: &ActiveRules,
        trigger: Uuid,
        resolution: Resolution,
        meta: &CommandMeta,
    ) -> Result<LeadCommand, AppError> {
        if let Some((pool, command)) = resolution.pick {
            self.record_pick(batch, pool, command, meta)?;
        }
        self.still_full(batch, &resolution.full);
        let (deadline, remind_at) = match resolution.outcome {
            RouteOutcome::Assign { to, .. } => {
                // The entry's deadline, else its pool's, else the org's.
                let entry = resolution.decision.matched_entry;
                let pool = match resolution.decision.target {
                    Some(Target::Pool(pool)) => self.known.pools.get(&pool),
                    _ => None,
                };
                let deadline = entry
                    .and_then(|i| rules.compiled.entry(i).acceptance_deadline)
                    .or(pool.and_then(|p| p.acceptance_deadline));
                self.workflow.due_for(to, deadline, meta.at)
            }
            _ => (None, None),
        };
        Ok(LeadCommand::RouteLead(RouteLead {
            trigger,
            decision: resolution.decision,
            outcome: resolution.outcome,
            deadline,
            remind_at,
            actor: meta.actor.clone(),
            at: meta.at,
        }))
    }

    /// Apply a pick to its pool and queue the pool's events in `batch`.
    pub(crate) fn record_pick(
        &mut self,
        batch: &mut Batch,
        pool: PoolId,
        command: PoolCommand,
        meta: &CommandMeta,
    ) -> Result<(), AppError> {
        let events = self
            .known
            .apply_pick(pool, command)
            .map_err(crate::error::refused)?;
        let state = &self.known.pools[&pool];
        for event in &events {
            if let PoolEvent::PoolMemberPicked { member, .. } = event {
                if let Some(cap) = state.cap_of(*member).filter(|_| self.caps == Caps::Apply) {
                    batch.cap(self.org, member_uuid(*member), cap);
                }
            }
        }
        let sequence = self.sequences.entry(pool).or_default();
        batch.record(state, &pool.to_string(), sequence, events, meta)?;
        Ok(())
    }

    /// A lead left waiting for the members of `full` (each with its cap) is committed
    /// only while they are still full.
    pub(crate) fn still_full(&self, batch: &mut Batch, full: &[(Member, u32)]) {
        for (member, cap) in full {
            batch.full(self.org, member_uuid(*member), *cap);
        }
    }

    /// The pools as the picks applied left them, with their sequences: what a committed
    /// batch stored (for [`Commands::remember`]).
    pub(crate) fn into_pools(self) -> impl Iterator<Item = (Pool, usize, String)> {
        let sequences = self.sequences;
        self.known
            .pools
            .into_iter()
            .map(move |(id, pool)| (pool, sequences[&id], id.to_string()))
    }
}

fn keys<T: ToString>(ids: &BTreeSet<T>) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

/// The id of a pool member (a user or a queue) as the leads read model stores owners.
fn member_uuid(member: Member) -> Uuid {
    match member {
        Member::PartnerUser(user) => user.0,
        Member::Queue(queue) => queue.0,
    }
}

/// The refusal for a target the rules name that does not exist in the org.
pub(crate) fn missing(target: Target) -> AppError {
    match target {
        Target::PartnerUser(id) => {
            AppError::not_found(PartnerUser::NOT_FOUND, PartnerUser::WHAT, id)
        }
        Target::Queue(id) => AppError::not_found(Queue::NOT_FOUND, Queue::WHAT, id),
        Target::Pool(id) => AppError::not_found(Pool::NOT_FOUND, Pool::WHAT, id),
    }
}
