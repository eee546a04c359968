//! Routing at intake: the lead events of one org that arrived together are received, and
//! each new lead (unless upstream opted out) is routed under the org's active rule set, with
//! its `LeadReceived` event id as the trigger. Everything (`LeadReceived`, pool picks,
//! `LeadRouted` / `LeadNotRouted`) is committed in one transaction, instead of a commit for
//! the lead, then a hop through the publisher and NATS to the router, then a commit per pick
//! and per decision. The router consumer later sees the `LeadReceived` with its trigger
//! decided and does nothing; a lead this path leaves alone (a target that no longer exists)
//! is routed by the router as before.
//!
//! Facts are looked up once per batch, from the event store: pools, partner users, their
//! accounts and queues come from this process's cached states plus, with one query per
//! kind, the events committed since (`Commands::load_many_cached`), so every verdict is
//! current; for capped pools only, open-lead counts come from the leads read model (raised
//! as the batch assigns). The decisions are the router's: the same pure `plan`, the same verdicts
//! and the pool aggregate's own pick.

use super::{assign, member_uuid, planned, ActiveRules, Router, ROUTER};
use crate::app::{AppError, Batch, CommandMeta, Loaded, NewLead};
use leadroute_domain::ids::{Actor, LeadId, OrgId, PartnerUserId, PoolId, QueueId};
use leadroute_domain::lead::{Lead, LeadCommand, RouteLead, RouteOutcome};
use leadroute_domain::org::Org;
use leadroute_domain::partner_account::PartnerAccount;
use leadroute_domain::partner_user::PartnerUser;
use leadroute_domain::pool::{Pool, PoolCommand};
use leadroute_domain::queue::Queue;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::Target;
use leadroute_domain::routing::{
    plan, user_verdict, Candidate, Decision, NotRouted, Plan, Trigger, Verdict,
};
use leadroute_projections::queries;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// What a batch knows about the targets its decisions may land on.
#[derive(Default)]
struct Facts {
    /// Pools, loaded, advanced in memory by the batch's picks.
    pools: HashMap<PoolId, Loaded<Pool>>,
    /// Partner users' verdicts (assignability, then the pause).
    users: HashMap<PartnerUserId, Verdict>,
    /// Queues that exist in the org.
    queues: HashSet<QueueId>,
    /// Open leads per member of capped pools.
    open: HashMap<Uuid, i64>,
}

impl Router {
    /// Receive `leads` (lead events of `org`) and route the new ones, in one transaction.
    /// Answers per event as `Commands::receive_leads` does. Batches of one process run one
    /// at a time; a lost race with another process retries the whole batch.
    pub async fn receive_and_route(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<Vec<(LeadId, Result<usize, AppError>)>, AppError> {
        let _one_batch_at_a_time = self.inline.lock().await;
        self.commands
            .retry(|| self.receive_and_route_once(meta, org, leads))
            .await
    }

    async fn receive_and_route_once(
        &self,
        meta: &CommandMeta,
        org: OrgId,
        leads: &[NewLead],
    ) -> Result<Vec<(LeadId, Result<usize, AppError>)>, AppError> {
        self.commands.load_in_org::<Org>(org, org).await?;
        let (ids, keys) = NewLead::lead_ids(org, leads);
        let mut loaded = self.commands.load_many::<Lead>(&keys).await?;
        let mut batch = Batch::default();
        let mut answers = Vec::with_capacity(leads.len());
        let mut new_leads: Vec<(String, Uuid)> = Vec::new();
        let mut picked_pools = HashMap::new();
        for (new, lead_id) in leads.iter().zip(&ids) {
            let key = lead_id.to_string();
            let lead = loaded.get_mut(&key).expect("every lead is loaded");
            let command = new.receive(*lead_id, org, meta);
            let answer = match batch.decide(lead, command, meta).await {
                Err(refused @ AppError::Refused { .. }) => Err(refused),
                Err(other) => return Err(other),
                Ok(events) => {
                    let received = lead.current_sequence == events.len() && !events.is_empty();
                    if received && new.route {
                        new_leads.push((key, events[0]));
                    }
                    Ok(events.len())
                }
            };
            answers.push((*lead_id, answer));
        }
        if !new_leads.is_empty() {
            if let Some(rules) = self.rules(org).await? {
                let leads_to_route: Vec<&Lead> = new_leads
                    .iter()
                    .map(|(key, _)| &loaded[key].aggregate)
                    .collect();
                let mut facts = self.facts(org, &rules, &leads_to_route).await?;
                for (key, trigger) in new_leads {
                    let lead = loaded.get_mut(&key).expect("a received lead");
                    let route_meta = CommandMeta {
                        actor: Actor::System(ROUTER.into()),
                        at: meta.at,
                        correlation_id: meta.correlation_id,
                        causation_id: None,
                    }
                    .caused_by(trigger);
                    let Some((decision, outcome)) = facts
                        .decide(&rules, lead, trigger, &mut batch, &route_meta)
                        .await?
                    else {
                        continue;
                    };
                    let route = LeadCommand::RouteLead(RouteLead {
                        trigger,
                        decision,
                        outcome,
                        actor: route_meta.actor.clone(),
                        at: route_meta.at,
                    });
                    match batch.decide(lead, route, &route_meta).await {
                        // Left to the router consumer, which decides it again.
                        Ok(_) | Err(AppError::Refused { .. }) => {}
                        Err(other) => return Err(other),
                    }
                }
                picked_pools = facts.pools;
            }
        }
        self.commands.commit_batch(batch).await?;
        // The pools as this batch left them are what is now stored.
        self.commands.remember(
            picked_pools
                .into_values()
                .map(|pool| (pool.aggregate, pool.current_sequence, pool.aggregate_id)),
        );
        Ok(answers)
    }

    /// The facts about every target the rules send `leads` to.
    async fn facts(
        &self,
        org: OrgId,
        rules: &ActiveRules,
        leads: &[&Lead],
    ) -> Result<Facts, AppError> {
        let mut facts = Facts::default();
        let mut users: BTreeSet<PartnerUserId> = BTreeSet::new();
        let mut queues: BTreeSet<QueueId> = BTreeSet::new();
        let mut pools: BTreeSet<PoolId> = BTreeSet::new();
        for lead in leads {
            if let Plan::Route { target, .. } =
                plan(&rules.compiled, rules.default_owner, &lead.fields, None)
            {
                match target {
                    Target::PartnerUser(user) => {
                        users.insert(user);
                    }
                    Target::Queue(queue) => {
                        queues.insert(queue);
                    }
                    Target::Pool(pool) => {
                        pools.insert(pool);
                    }
                }
            }
        }
        let mut members: Vec<Uuid> = Vec::new();
        let pool_keys: Vec<String> = pools.iter().map(ToString::to_string).collect();
        let mut loaded_pools = self.commands.load_many_cached::<Pool>(&pool_keys).await?;
        for pool_id in pools {
            let pool = loaded_pools
                .remove(&pool_id.to_string())
                .expect("every pool is loaded");
            if pool.aggregate.org_id != Some(org) {
                continue;
            }
            for slot in pool.aggregate.slots() {
                match slot.member {
                    Member::PartnerUser(user) => users.insert(user),
                    Member::Queue(queue) => queues.insert(queue),
                };
                if pool.aggregate.cap.is_some() {
                    members.push(member_uuid(slot.member));
                }
            }
            facts.pools.insert(pool_id, pool);
        }
        let user_keys: Vec<String> = users.iter().map(ToString::to_string).collect();
        let loaded_users = self
            .commands
            .load_many_cached::<PartnerUser>(&user_keys)
            .await?;
        let account_keys: Vec<String> = loaded_users
            .values()
            .filter_map(|u| u.aggregate.account_id.map(|a| a.to_string()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let accounts = self
            .commands
            .load_many_cached::<PartnerAccount>(&account_keys)
            .await?;
        let now = chrono::Utc::now();
        for user_id in users {
            let user = &loaded_users[&user_id.to_string()].aggregate;
            let verdict = if user.org_id != Some(org) {
                Verdict::Inactive
            } else {
                let account_active = user
                    .account_id
                    .and_then(|a| accounts.get(&a.to_string()))
                    .is_some_and(|a| a.aggregate.active);
                user_verdict(user.assignability(account_active), user.paused_at(now))
            };
            facts.users.insert(user_id, verdict);
        }
        let queue_keys: Vec<String> = queues.iter().map(ToString::to_string).collect();
        let loaded_queues = self.commands.load_many_cached::<Queue>(&queue_keys).await?;
        facts.queues = queues
            .into_iter()
            .filter(|q| loaded_queues[&q.to_string()].aggregate.org_id == Some(org))
            .collect();
        if !members.is_empty() {
            facts.open = queries::open_leads(&self.pool, org, &members)
                .await
                .map_err(|e| AppError::Store(Box::new(e)))?
                .into_iter()
                .collect();
        }
        Ok(facts)
    }
}

impl Facts {
    /// The decision for a lead just received (it has no owner), or `None` to leave it to
    /// the router consumer.
    async fn decide(
        &mut self,
        rules: &ActiveRules,
        lead: &Loaded<Lead>,
        trigger: Uuid,
        batch: &mut Batch,
        meta: &CommandMeta,
    ) -> Result<Option<(Decision, RouteOutcome)>, AppError> {
        let (mut decision, planned) =
            planned(rules, Trigger::Received, &lead.aggregate.fields, None);
        let outcome = match planned {
            Err(outcome) => outcome,
            Ok((target, notify)) => {
                let member = match target {
                    Target::Queue(queue) if self.queues.contains(&queue) => Member::Queue(queue),
                    Target::PartnerUser(user) => Member::PartnerUser(user),
                    Target::Pool(pool) if self.pools.contains_key(&pool) => {
                        let lead_id = lead.aggregate.id.expect("a received lead");
                        let outcome = self
                            .pick(pool, lead_id, trigger, notify, &mut decision, batch, meta)
                            .await?;
                        return Ok(Some((decision, outcome)));
                    }
                    // A target gone since the rules were published: the router reports it.
                    Target::Queue(_) | Target::Pool(_) => return Ok(None),
                };
                let verdict = self.verdict(member);
                decision.candidates = vec![Candidate { member, verdict }];
                match verdict {
                    Verdict::Assignable => assign(member, notify),
                    _ => RouteOutcome::Leave(NotRouted::for_candidates(&decision.candidates)),
                }
            }
        };
        Ok(Some((decision, outcome)))
    }

    fn verdict(&self, member: Member) -> Verdict {
        match member {
            Member::PartnerUser(user) => {
                self.users.get(&user).copied().unwrap_or(Verdict::Inactive)
            }
            Member::Queue(queue) if self.queues.contains(&queue) => Verdict::Assignable,
            Member::Queue(_) => Verdict::Inactive,
        }
    }

    /// Pick the pool member whose turn it is among the assignable ones (the pick is an
    /// event of the batch) and record the pool before and after.
    #[allow(clippy::too_many_arguments)]
    async fn pick(
        &mut self,
        pool_id: PoolId,
        lead_id: LeadId,
        trigger: Uuid,
        notify: bool,
        decision: &mut Decision,
        batch: &mut Batch,
        meta: &CommandMeta,
    ) -> Result<RouteOutcome, AppError> {
        let pool = self.pools.get(&pool_id).expect("a loaded pool");
        let cap = pool.aggregate.cap;
        let candidates: Vec<Candidate> = pool
            .aggregate
            .slots()
            .iter()
            .map(|slot| {
                let verdict = self.verdict(slot.member);
                let held = self
                    .open
                    .get(&member_uuid(slot.member))
                    .copied()
                    .unwrap_or(0);
                let full = cap.is_some_and(|cap| held >= i64::from(cap));
                Candidate::capped(slot.member, verdict, full)
            })
            .collect();
        decision.candidates = candidates.clone();
        if !candidates.iter().any(|c| c.verdict == Verdict::Assignable) {
            return Ok(RouteOutcome::Leave(NotRouted::for_candidates(&candidates)));
        }
        let pool = self.pools.get_mut(&pool_id).expect("a loaded pool");
        let before = pool.aggregate.slots().to_vec();
        let command = PoolCommand::PickMember {
            lead_id,
            trigger,
            candidates,
            at: meta.at,
        };
        batch.decide(pool, command, meta).await?;
        let member = pool
            .aggregate
            .picked_for(trigger)
            .expect("a pick is remembered");
        decision.pool_before = Some(before);
        decision.pool_after = Some(pool.aggregate.slots().to_vec());
        if cap.is_some() {
            *self.open.entry(member_uuid(member)).or_default() += 1;
        }
        Ok(assign(member, notify))
    }
}
