//! The router's engine: evaluates an org's active rule set for one lead and applies the
//! decision (`RouteLead`), with the decision record. Used by the NATS router on lead
//! received and watched-field updates, by the API's explicit re-run, and, writing
//! nothing, by the dry run.
//!
//! Facts: the lead, the rule set and a direct target are read from the event store; pool
//! members' verdicts come from the directory read model, and every member it holds back,
//! and the member a pick lands on, are judged again from the event store before the pick
//! is committed; caps count open leads in the leads read model.

mod consumer;
mod dry_run;
mod inline;

pub use consumer::RouterConsumer;
pub use dry_run::DryRun;

use crate::app::{AppError, CommandMeta, Commands, Committed, Picked};
use leadroute_domain::ids::{Actor, LeadId, OrgId, Owner, PoolId};
use leadroute_domain::lead::{Lead, RouteLead, RouteOutcome};
use leadroute_domain::pool::Pool;
use leadroute_domain::routing::rotation::Member;
use leadroute_domain::routing::rules::{CompiledRules, RuleSetSpec, Target};
use leadroute_domain::routing::{
    is_assignable, plan, set_verdict, user_verdict, Candidate, Decision, NotRouted, Plan, Trigger,
    Verdict,
};
use leadroute_domain::rule_set::RuleSet;
use leadroute_projections::queries;
use leadroute_projections::schema::EVENTS_TABLE;
use sqlx::PgPool;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Code of the refusal to route in an org without a published rule set (the router then
/// leaves leads alone and writes nothing).
pub const NO_RULE_SET: &str = "no_rule_set";

/// The actor recorded on routing decisions.
pub const ROUTER: &str = "router";

/// A published rule set, compiled.
#[derive(Debug)]
pub struct ActiveRules {
    /// Its version.
    pub version: u32,
    /// The compiled entries.
    pub compiled: CompiledRules,
    /// Owner of leads no entry matches.
    pub default_owner: Option<Target>,
    /// Fields whose update re-routes a lead.
    pub watched_fields: BTreeSet<String>,
}

impl ActiveRules {
    /// Compile `spec` as `version`.
    pub fn compile(version: u32, spec: &RuleSetSpec) -> ActiveRules {
        ActiveRules {
            version,
            compiled: CompiledRules::compile(spec),
            default_owner: spec.default_owner,
            watched_fields: spec.watched_fields.clone(),
        }
    }
}

/// Evaluates rules and applies decisions.
#[derive(Clone)]
pub struct Router {
    /// Executes commands and loads aggregates.
    commands: Commands,
    /// Event store and read models.
    pool: PgPool,
    /// Compiled rule sets by org, replaced when a newer version is published.
    rules: Arc<Mutex<HashMap<OrgId, Arc<ActiveRules>>>>,
    /// Held while a batch is received and routed inline: batches of one process would
    /// otherwise race for the same pools.
    inline: Arc<tokio::sync::Mutex<()>>,
}

impl Router {
    /// A router over `pool` (migrated).
    pub fn new(pool: PgPool) -> Router {
        Router {
            commands: Commands::new(pool.clone()),
            pool,
            rules: Arc::default(),
            inline: Arc::default(),
        }
    }

    /// The org's active rule set, compiled (from the cache while no newer version exists).
    pub async fn rules(&self, org: OrgId) -> Result<Option<Arc<ActiveRules>>, AppError> {
        let version: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT max(sequence) FROM {EVENTS_TABLE} WHERE aggregate_type = $1 AND aggregate_id = $2"
        ))
        .bind(<RuleSet as cqrs_es::Aggregate>::TYPE)
        .bind(org.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| AppError::Store(Box::new(e)))?;
        let Some(version) = version else {
            return Ok(None);
        };
        if let Some(cached) = self.cached(org).filter(|c| i64::from(c.version) == version) {
            return Ok(Some(cached));
        }
        let rule_set = self.commands.state::<RuleSet>(org, org).await?;
        let compiled = Arc::new(ActiveRules::compile(rule_set.version, &rule_set.spec));
        self.rules
            .lock()
            .expect("rules cache lock")
            .insert(org, compiled.clone());
        Ok(Some(compiled))
    }

    fn cached(&self, org: OrgId) -> Option<Arc<ActiveRules>> {
        self.rules
            .lock()
            .expect("rules cache lock")
            .get(&org)
            .cloned()
    }

    /// Evaluate the org's rules for `lead` and apply the decision; a trigger already
    /// decided is a no-op. The decision applies only to the lead as it was read; if the
    /// lead changed meanwhile (another router, a manual change), it is decided again (a
    /// pool answers the same trigger with the same member).
    pub async fn route(
        &self,
        org: OrgId,
        lead_id: LeadId,
        trigger: Uuid,
        kind: Trigger,
    ) -> Result<Committed, AppError> {
        const ATTEMPTS: u32 = 5;
        let meta = CommandMeta::now(Actor::System(ROUTER.into())).caused_by(trigger);
        let mut attempt = 1;
        loop {
            let (lead, sequence) = self.commands.state_at::<Lead>(org, lead_id).await?;
            if lead.routed_triggers.contains(&trigger) {
                // Redelivered, or routed by the intake as it received the lead: done.
                return Ok(Committed {
                    aggregate_type: "Lead",
                    aggregate_id: lead_id.to_string(),
                    events: 0,
                    sequence,
                });
            }
            let (decision, outcome) = {
                let pick = PickRequest {
                    org,
                    lead_id,
                    trigger,
                    meta: &meta,
                    simulated: None,
                };
                let (decision, outcome) = self.decide(&lead, kind, pick).await?;
                (decision, self.final_check(org, outcome).await?)
            };
            let route = RouteLead {
                trigger,
                decision,
                outcome,
                actor: meta.actor.clone(),
                at: meta.at,
            };
            match self
                .commands
                .route_lead_at(&meta, org, lead_id, &route, sequence)
                .await
            {
                Err(AppError::Conflict { .. }) if attempt < ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    /// The owner a decision assigns, judged once more from the event store: the lead
    /// refuses a partner user who may no longer receive leads.
    async fn final_check(
        &self,
        org: OrgId,
        outcome: RouteOutcome,
    ) -> Result<RouteOutcome, AppError> {
        Ok(match outcome {
            RouteOutcome::Assign {
                to: to @ Owner::PartnerUser(user),
                notify,
                ..
            } => RouteOutcome::Assign {
                to,
                notify,
                target: self.commands.partner_user_assignability(org, user).await?.1,
            },
            other => other,
        })
    }

    /// The decision for `lead` under the org's active rule set.
    async fn decide(
        &self,
        lead: &Lead,
        kind: Trigger,
        pick: PickRequest<'_>,
    ) -> Result<(Decision, RouteOutcome), AppError> {
        let Some(rules) = self.rules(pick.org).await? else {
            return Err(AppError::refusal(
                NO_RULE_SET,
                leadroute_domain::RefusalKind::Conflict,
                "the org has no published rule set",
            ));
        };
        self.decide_with(&rules, lead, kind, pick).await
    }

    /// The decision for `lead` under `rules`.
    async fn decide_with(
        &self,
        rules: &ActiveRules,
        lead: &Lead,
        kind: Trigger,
        pick: PickRequest<'_>,
    ) -> Result<(Decision, RouteOutcome), AppError> {
        let owner = match lead.owner {
            Some(owner @ Owner::PartnerUser(user)) => {
                let (_, verdict) = self
                    .commands
                    .partner_user_assignability(pick.org, user)
                    .await?;
                Some((owner, verdict.is_ok()))
            }
            Some(owner) => Some((owner, true)),
            None => None,
        };
        let (mut decision, planned) = planned(rules, kind, &lead.fields, owner);
        let outcome = match planned {
            Ok((target, notify)) => self.resolve(target, notify, &mut decision, pick).await?,
            Err(outcome) => outcome,
        };
        Ok((decision, outcome))
    }

    /// Turn a target into an owner: a queue takes any lead; a partner user only when
    /// assignable and not paused; a pool gives it to the member whose turn it is.
    async fn resolve(
        &self,
        target: Target,
        notify: bool,
        decision: &mut Decision,
        pick: PickRequest<'_>,
    ) -> Result<RouteOutcome, AppError> {
        let member = match target {
            Target::Queue(queue) => Member::Queue(queue),
            Target::PartnerUser(user) => Member::PartnerUser(user),
            Target::Pool(pool) => {
                return self.resolve_pool(pool, notify, decision, pick).await;
            }
        };
        let verdict = self.checked_verdict(pick.org, member, None).await?;
        decision.candidates = vec![Candidate { member, verdict }];
        Ok(match verdict {
            Verdict::Assignable => assign(member, notify),
            _ => RouteOutcome::Leave(NotRouted::for_candidates(&decision.candidates)),
        })
    }

    async fn resolve_pool(
        &self,
        pool_id: PoolId,
        notify: bool,
        decision: &mut Decision,
        pick: PickRequest<'_>,
    ) -> Result<RouteOutcome, AppError> {
        let org = pick.org;
        let known = pick
            .simulated
            .and_then(|s| s.lock().expect("dry-run pools").get(&pool_id).cloned());
        let pool = match known {
            Some(pool) => pool,
            None => self.commands.state::<Pool>(org, pool_id).await?,
        };
        let mut candidates = self.pool_verdicts(org, &pool).await?;
        // The directory may lag: a member it holds back is judged again from the event
        // store (few are), and so is each member a pick would land on.
        for candidate in candidates.iter_mut() {
            if !matches!(candidate.verdict, Verdict::Assignable | Verdict::AtCapacity) {
                candidate.verdict = self
                    .checked_verdict(org, candidate.member, pool.cap)
                    .await?;
            }
        }
        let verify = |member| self.checked_verdict(org, member, pool.cap);
        let picked = match pick.simulated {
            None => {
                self.commands
                    .pick_from_pool(
                        pick.meta,
                        org,
                        pool_id,
                        pick.lead_id,
                        pick.trigger,
                        candidates,
                        verify,
                    )
                    .await?
            }
            Some(simulated) => {
                simulate_pick(simulated, pool_id, pool.clone(), candidates, verify).await?
            }
        };
        match picked {
            Ok(Picked {
                member,
                candidates,
                before,
                after,
            }) => {
                decision.candidates = candidates;
                decision.pool_before = before;
                decision.pool_after = after;
                Ok(assign(member, notify))
            }
            Err(candidates) => {
                decision.candidates = candidates;
                Ok(RouteOutcome::Leave(NotRouted::for_candidates(
                    &decision.candidates,
                )))
            }
        }
    }

    /// Every pool member's verdict, from the read models.
    async fn pool_verdicts(&self, org: OrgId, pool: &Pool) -> Result<Vec<Candidate>, AppError> {
        let read = |e: sqlx::Error| AppError::Store(Box::new(e));
        let users: Vec<Uuid> = pool
            .slots()
            .iter()
            .filter_map(|s| match s.member {
                Member::PartnerUser(u) => Some(u.0),
                Member::Queue(_) => None,
            })
            .collect();
        let owners: Vec<Uuid> = pool.slots().iter().map(|s| member_uuid(s.member)).collect();
        let facts: HashMap<Uuid, queries::MemberFacts> =
            queries::member_facts(&self.pool, org, &users)
                .await
                .map_err(read)?
                .into_iter()
                .map(|f| (f.user_id, f))
                .collect();
        let open: HashMap<Uuid, i64> = match pool.cap {
            // Counting open leads costs a scan of the members' leads: only for a cap.
            Some(_) => queries::open_leads(&self.pool, org, &owners)
                .await
                .map_err(read)?
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        Ok(pool
            .slots()
            .iter()
            .map(|slot| {
                let id = member_uuid(slot.member);
                let verdict = match slot.member {
                    Member::PartnerUser(_) => {
                        facts.get(&id).map_or(Verdict::Inactive, directory_verdict)
                    }
                    Member::Queue(_) => Verdict::Assignable,
                };
                let full = pool
                    .cap
                    .is_some_and(|cap| open.get(&id).copied().unwrap_or(0) >= i64::from(cap));
                Candidate::capped(slot.member, verdict, full)
            })
            .collect())
    }

    /// A member's verdict from the event store (a queue is always assignable), with the
    /// cap from the leads read model.
    async fn checked_verdict(
        &self,
        org: OrgId,
        member: Member,
        cap: Option<u32>,
    ) -> Result<Verdict, AppError> {
        let verdict = match member {
            Member::Queue(queue) => {
                self.commands
                    .state::<leadroute_domain::queue::Queue>(org, queue)
                    .await?;
                Verdict::Assignable
            }
            Member::PartnerUser(user) => {
                let (state, assignable) =
                    self.commands.partner_user_assignability(org, user).await?;
                user_verdict(assignable, state.paused_at(chrono::Utc::now()))
            }
        };
        let Some(cap) = cap.filter(|_| verdict == Verdict::Assignable) else {
            return Ok(verdict);
        };
        let open = queries::open_leads(&self.pool, org, &[member_uuid(member)])
            .await
            .map_err(|e| AppError::Store(Box::new(e)))?;
        let held = open.first().map_or(0, |(_, n)| *n);
        Ok(if held >= i64::from(cap) {
            Verdict::AtCapacity
        } else {
            Verdict::Assignable
        })
    }
}

/// Where a pool pick happens.
#[derive(Clone, Copy)]
struct PickRequest<'a> {
    org: OrgId,
    lead_id: LeadId,
    trigger: Uuid,
    meta: &'a CommandMeta,
    /// A dry run's pools, advanced in memory instead of committed.
    simulated: Option<&'a Mutex<HashMap<PoolId, Pool>>>,
}

/// The rules' plan for a lead and the decision record it starts: the target to resolve
/// (with the entry's notify flag), or the outcome when there is none (keep, leave).
fn planned(
    rules: &ActiveRules,
    kind: Trigger,
    fields: &leadroute_domain::lead::LeadFields,
    owner: Option<(Owner, bool)>,
) -> (Decision, Result<(Target, bool), RouteOutcome>) {
    let mut decision = empty_decision(rules.version, kind);
    let planned = match plan(&rules.compiled, rules.default_owner, fields, owner) {
        Plan::KeepOwner { entry } => {
            decision.matched_entry = Some(entry);
            Err(RouteOutcome::Keep)
        }
        Plan::Leave(reason) => Err(RouteOutcome::Leave(reason)),
        Plan::Route {
            entry,
            target,
            notify,
            owner_not_assignable,
        } => {
            decision.matched_entry = entry;
            decision.default_owner = entry.is_none();
            decision.owner_not_assignable = owner_not_assignable;
            Ok((target, notify))
        }
    };
    (decision, planned)
}

fn empty_decision(version: u32, trigger: Trigger) -> Decision {
    Decision {
        rule_set_version: version,
        matched_entry: None,
        default_owner: false,
        owner_not_assignable: false,
        candidates: vec![],
        pool_before: None,
        pool_after: None,
        trigger,
    }
}

fn assign(member: Member, notify: bool) -> RouteOutcome {
    RouteOutcome::Assign {
        to: match member {
            Member::PartnerUser(user) => Owner::PartnerUser(user),
            Member::Queue(queue) => Owner::Queue(queue),
        },
        notify,
        target: Ok(()),
    }
}

fn member_uuid(member: Member) -> Uuid {
    match member {
        Member::PartnerUser(user) => user.0,
        Member::Queue(queue) => queue.0,
    }
}

/// A pick that only advances the dry run's copy of the pool, judging the members a pick
/// would land on like a real pick does.
async fn simulate_pick<V, Fut>(
    simulated: &Mutex<HashMap<PoolId, Pool>>,
    pool_id: PoolId,
    mut pool: Pool,
    mut candidates: Vec<Candidate>,
    verify: V,
) -> Result<Result<Picked, Vec<Candidate>>, AppError>
where
    V: Fn(Member) -> Fut,
    Fut: std::future::Future<Output = Result<Verdict, AppError>>,
{
    let before = pool.slots().to_vec();
    loop {
        let Some((member, rotation)) = pool.rotation.pick(|m| is_assignable(&candidates, m)) else {
            return Ok(Err(candidates));
        };
        let verdict = verify(member).await?;
        if verdict != Verdict::Assignable {
            set_verdict(&mut candidates, member, verdict);
            continue;
        }
        let after = rotation.slots.clone();
        pool.rotation = rotation;
        simulated
            .lock()
            .expect("dry-run pools")
            .insert(pool_id, pool);
        return Ok(Ok(Picked {
            member,
            candidates,
            before: Some(before),
            after: Some(after),
        }));
    }
}

fn directory_verdict(facts: &queries::MemberFacts) -> Verdict {
    if !facts.active {
        Verdict::Inactive
    } else if !facts.signed_in_once {
        Verdict::NeverSignedIn
    } else if !facts.account_active {
        Verdict::PartnerAccountNotActive
    } else if facts.paused {
        Verdict::Paused
    } else {
        Verdict::Assignable
    }
}
