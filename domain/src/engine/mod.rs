//! The routing engine: one pure [`resolve`] turns the rules' plan for a lead and the facts
//! about its targets into the candidates with their verdicts, the pool pick, the outcome
//! and the decision record. Every path that routes calls it: the NATS router, routing at
//! intake and the dry run. Bulk moves into pools use its pool pick, [`pick_member`], the one
//! place a `PickMember` command is made (and `Pool::decide` the one place its
//! `PoolMemberPicked` event is).
//!
//! It owns the verdicts (through `routing::judge`), the cap and the not-routed reasons.
//! Facts arrive through [`Facts`]: callers only gather them. [`KnownFacts`] holds them in
//! memory and advances them by each pick ([`KnownFacts::apply_pick`]), so a batch of leads
//! is resolved exactly as one lead at a time against the stored log would be (the property
//! test in `tests.rs` holds the two to the same decisions).

use crate::ids::{LeadId, Owner, PartnerUserId, PoolId, QueueId};
use crate::lead::Lead;
use crate::partner_user::{NotAssignable, Standing};
use crate::pool::{Pool, PoolCommand, PoolError, PoolEvent};
use crate::routing::rotation::{Member, Slot};
use crate::routing::rules::{ActiveRules, Target};
use crate::routing::{
    judge, plan, Candidate, Decision, NotRouted, Plan, RouteOutcome, Trigger, Verdict,
};
use crate::Decider;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// What routing needs to know about the targets of a lead, in its org.
pub trait Facts {
    /// The time verdicts are judged at (a pause with an end is over after it).
    fn now(&self) -> DateTime<Utc>;
    /// A partner user's standing; `None` when it is not a partner user of the org.
    fn user(&self, user: PartnerUserId) -> Option<Standing>;
    /// Whether the queue exists in the org.
    fn queue_exists(&self, queue: QueueId) -> bool;
    /// Whether someone may claim from the queue (asked only of queues that exist): a
    /// member user who may receive leads, or a member account that is an active partner.
    fn queue_claimable(&self, queue: QueueId) -> bool;
    /// The pool, when it exists in the org.
    fn pool(&self, pool: PoolId) -> Option<&Pool>;
    /// Open leads the member holds (asked only about members of capped pools).
    fn open_leads(&self, member: Member) -> u32;
    /// The open lead owned by a partner that the new lead `lead` matches by the org's
    /// duplicate keys, with its owner (asked only about new leads).
    fn duplicate_of(&self, _lead: LeadId) -> Option<(LeadId, Owner)> {
        None
    }
}

/// Whether a pool's cap applies: to automatic routing it does; to a person's bulk move it
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caps {
    /// Members holding as many open leads as the cap are `at_capacity`.
    Apply,
    /// The cap is not looked at.
    Ignore,
}

/// A member's verdict, before any cap: a partner user by [`judge`] (one that is not a user
/// of the org is `inactive`), a queue assignable while it exists and someone may claim from
/// it (else `no_claimant`).
pub fn verdict(member: Member, facts: &impl Facts) -> Verdict {
    match member {
        Member::PartnerUser(user) => facts
            .user(user)
            .map_or(Verdict::Inactive, |standing| judge(&standing, facts.now())),
        Member::Queue(queue) if !facts.queue_exists(queue) => Verdict::Inactive,
        Member::Queue(queue) if facts.queue_claimable(queue) => Verdict::Assignable,
        Member::Queue(_) => Verdict::NoClaimant,
    }
}

/// Every member of `pool` with its verdict, in rotation order; with [`Caps::Apply`], a
/// member that would be assignable but holds as many open leads as its cap (its own, else
/// the pool's) is `at_capacity`.
pub fn candidates(pool: &Pool, facts: &impl Facts, caps: Caps) -> Vec<Candidate> {
    pool.slots()
        .iter()
        .map(|slot| {
            let cap = slot.cap.or(pool.cap).filter(|_| caps == Caps::Apply);
            let full = cap.is_some_and(|cap| facts.open_leads(slot.member) >= cap);
            Candidate::capped(slot.member, verdict(slot.member, facts), full)
        })
        .collect()
}

/// Judge the members `lead` is closed to: a partner user who declined it is
/// `declined_before`, one who let an offer of it lapse `lapsed_before`, whatever their
/// verdict was (those verdicts never change, so they decide over any passing one).
pub fn exclude(lead: &Lead, candidates: &mut [Candidate]) {
    for candidate in candidates.iter_mut() {
        if let Some(verdict) = exclusion(lead, candidate.member) {
            candidate.verdict = verdict;
        }
    }
}

/// The verdict that closes `lead` to `member` for good, if one does.
fn exclusion(lead: &Lead, member: Member) -> Option<Verdict> {
    match member {
        Member::PartnerUser(user) if lead.declined.contains(&user) => Some(Verdict::DeclinedBefore),
        Member::PartnerUser(user) if lead.lapsed.contains(&user) => Some(Verdict::LapsedBefore),
        Member::PartnerUser(_) | Member::Queue(_) => None,
    }
}

/// A pool member picked for a lead.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPick {
    /// The member who gets the lead.
    pub member: Member,
    /// Every member's verdict as judged for the pick.
    pub candidates: Vec<Candidate>,
    /// The rotation before the pick (`None` when the trigger had already picked).
    pub before: Option<Vec<Slot>>,
    /// The rotation after the pick (`None` likewise).
    pub after: Option<Vec<Slot>>,
    /// The command that records the pick on the pool (`None` likewise: nothing moves).
    pub command: Option<PoolCommand>,
}

/// The member of `pool` whose turn it is among the assignable `candidates`, and the
/// command that records the pick; `Err` with the reason (and the candidates) when nobody may
/// take the lead. A trigger that already picked gets its earlier member and moves nothing.
pub fn pick_member(
    pool: &Pool,
    lead_id: LeadId,
    trigger: Uuid,
    candidates: Vec<Candidate>,
    at: DateTime<Utc>,
) -> Result<PoolPick, (NotRouted, Vec<Candidate>)> {
    if let Some(member) = pool.picked_for(trigger) {
        return Ok(PoolPick {
            member,
            candidates,
            before: None,
            after: None,
            command: None,
        });
    }
    let Some((member, after)) = pool.next_pick(&candidates) else {
        return Err((NotRouted::for_candidates(&candidates), candidates));
    };
    Ok(PoolPick {
        member,
        before: Some(pool.slots().to_vec()),
        after: Some(after.slots),
        command: Some(PoolCommand::PickMember {
            lead_id,
            trigger,
            candidates: candidates.clone(),
            at,
        }),
        candidates,
    })
}

/// A routing decision for one lead, to be applied with `RouteLead`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The decision record.
    pub decision: Decision,
    /// What happens to the lead.
    pub outcome: RouteOutcome,
    /// The pool pick to record with it, on that pool.
    pub pick: Option<(PoolId, PoolCommand)>,
    /// When the lead is left `all_at_capacity`: the members blocked only by their caps,
    /// with the cap. The lead waits for them, so the decision holds only while they are
    /// still full when it is committed.
    pub full: Vec<(Member, u32)>,
}

/// Decide where the lead `lead_id` (in state `lead`) goes under `rules`, for `trigger` of
/// `kind`, from `facts`. `Err(target)` when the target the rules name (a queue or a pool)
/// does not exist in the org: a rule set is checked when published, so that is a target
/// gone since.
pub fn resolve(
    rules: &ActiveRules,
    lead_id: LeadId,
    lead: &Lead,
    trigger: Uuid,
    kind: Trigger,
    facts: &impl Facts,
) -> Result<Resolution, Target> {
    let owner = lead.owner.map(|owner| {
        let assignable = match owner {
            Owner::PartnerUser(user) => facts
                .user(user)
                .is_some_and(|standing| standing.assignability().is_ok()),
            Owner::Queue(_) | Owner::InternalUser(_) => true,
        };
        (owner, assignable)
    });
    let mut decision = Decision::new(rules.version, kind);
    // A new lead that matches an open lead a partner owns is held, whatever the rules say.
    let new = kind == Trigger::Received && lead.owner.is_none() && !lead.duplicate_cleared;
    if let Some((of, owner)) = new
        .then(|| facts.duplicate_of(lead_id))
        .flatten()
        .filter(|_| !crate::routing::is_closed(&lead.fields))
    {
        return Ok(Resolution {
            decision,
            outcome: RouteOutcome::Hold { of, owner },
            pick: None,
            full: vec![],
        });
    }
    let done = |decision, outcome| {
        Ok(Resolution {
            decision,
            outcome,
            pick: None,
            full: vec![],
        })
    };
    let (target, notify, fallback) =
        match plan(&rules.compiled, rules.default_owner, &lead.fields, owner) {
            Plan::KeepOwner { entry } => {
                decision.matched_entry = Some(entry);
                return done(decision, RouteOutcome::Keep);
            }
            Plan::Leave(reason) => return done(decision, RouteOutcome::Leave(reason)),
            Plan::Route {
                entry,
                target,
                notify,
                fallback,
                owner_not_assignable,
            } => {
                decision.matched_entry = entry;
                decision.default_owner = entry.is_none();
                decision.target = Some(target);
                decision.owner_not_assignable = owner_not_assignable;
                if owner_not_assignable {
                    decision.owner_verdict = match lead.owner {
                        Some(Owner::PartnerUser(user)) => {
                            Some(verdict(Member::PartnerUser(user), facts))
                        }
                        _ => None,
                    };
                }
                (target, notify, fallback)
            }
        };
    let member = match target {
        Target::Pool(pool_id) => {
            let pool = facts.pool(pool_id).ok_or(target)?;
            let mut judged = candidates(pool, facts, Caps::Apply);
            exclude(lead, &mut judged);
            return match pick_member(pool, lead_id, trigger, judged, facts.now()) {
                // The pick lands on the owner the lead already has: it is kept, and the
                // rotation does not move (nobody lost or gained a turn).
                Ok(pick) if lead.owner.is_some() && lead.owner == Some(owner_of(pick.member)) => {
                    decision.candidates = pick.candidates;
                    decision.pool_after = pick.before.clone();
                    decision.pool_before = pick.before;
                    done(decision, RouteOutcome::Keep)
                }
                Ok(pick) => {
                    decision.candidates = pick.candidates;
                    decision.pool_before = pick.before;
                    decision.pool_after = pick.after;
                    Ok(Resolution {
                        decision,
                        outcome: assign(pick.member, notify, facts),
                        pick: pick.command.map(|command| (pool_id, command)),
                        full: vec![],
                    })
                }
                Err((NotRouted::OffereesExhausted, judged)) => {
                    decision.candidates = judged;
                    done_fallback(decision, lead, fallback, notify, facts)
                }
                Err((reason, judged)) => {
                    let full = judged
                        .iter()
                        .filter(|c| c.verdict == Verdict::AtCapacity)
                        .filter_map(|c| Some((c.member, pool.cap_of(c.member)?)))
                        .collect();
                    decision.candidates = judged;
                    Ok(Resolution {
                        decision,
                        outcome: RouteOutcome::Leave(reason),
                        pick: None,
                        full,
                    })
                }
            };
        }
        Target::Queue(queue) if !facts.queue_exists(queue) => return Err(target),
        Target::Queue(queue) => Member::Queue(queue),
        Target::PartnerUser(user) => Member::PartnerUser(user),
    };
    let verdict = exclusion(lead, member).unwrap_or_else(|| verdict(member, facts));
    decision.candidates = vec![Candidate { member, verdict }];
    match verdict {
        Verdict::Assignable => done(decision, assign(member, notify, facts)),
        _ if verdict.excluded() => done_fallback(decision, lead, fallback, notify, facts),
        _ => {
            let reason = NotRouted::for_candidates(&decision.candidates);
            done(decision, RouteOutcome::Leave(reason))
        }
    }
}

/// The resolution when everyone the target could offer the lead to is closed to it: the
/// entry's fallback (a partner user or a queue, judged like any candidate and added to the
/// candidates) if it may take the lead, else `offerees_exhausted`.
fn done_fallback(
    mut decision: Decision,
    lead: &Lead,
    fallback: Option<Target>,
    notify: bool,
    facts: &impl Facts,
) -> Result<Resolution, Target> {
    let member = match fallback {
        Some(Target::PartnerUser(user)) => Some(Member::PartnerUser(user)),
        Some(Target::Queue(queue)) => Some(Member::Queue(queue)),
        Some(Target::Pool(_)) | None => None,
    };
    let outcome = match member {
        Some(member) => {
            let verdict = exclusion(lead, member).unwrap_or_else(|| verdict(member, facts));
            decision.candidates.push(Candidate { member, verdict });
            decision.fallback = true;
            match verdict {
                Verdict::Assignable => assign(member, notify, facts),
                _ => RouteOutcome::Leave(NotRouted::OffereesExhausted),
            }
        }
        None => RouteOutcome::Leave(NotRouted::OffereesExhausted),
    };
    Ok(Resolution {
        decision,
        outcome,
        pick: None,
        full: vec![],
    })
}

/// The owner a lead has when `member` holds it.
fn owner_of(member: Member) -> Owner {
    match member {
        Member::PartnerUser(user) => Owner::PartnerUser(user),
        Member::Queue(queue) => Owner::Queue(queue),
    }
}

/// Give the lead to `member`, with whether it may receive it (the lead checks again).
fn assign(member: Member, notify: bool, facts: &impl Facts) -> RouteOutcome {
    match member {
        Member::PartnerUser(user) => RouteOutcome::Assign {
            to: Owner::PartnerUser(user),
            notify,
            target: facts
                .user(user)
                .map_or(Err(NotAssignable::Inactive), |s| s.assignability()),
        },
        Member::Queue(queue) => RouteOutcome::Assign {
            to: Owner::Queue(queue),
            notify,
            target: Ok(()),
        },
    }
}

/// Facts held in memory: what a caller gathered (from the event store and the leads read
/// model), advanced by each pick it applies.
#[derive(Debug, Clone, Default)]
pub struct KnownFacts {
    /// The time verdicts are judged at.
    pub now: DateTime<Utc>,
    /// Standings of the partner users of the org that routing may look at.
    pub users: HashMap<PartnerUserId, Standing>,
    /// Queues that exist in the org.
    pub queues: HashSet<QueueId>,
    /// Those of them nobody may claim from.
    pub unclaimable: HashSet<QueueId>,
    /// Pools of the org, as stored (and advanced by the picks applied since).
    pub pools: HashMap<PoolId, Pool>,
    /// Open leads per member of capped pools.
    pub open: HashMap<Member, u32>,
    /// New leads that match an open lead a partner owns: that lead and its owner.
    pub duplicates: HashMap<LeadId, (LeadId, Owner)>,
}

impl KnownFacts {
    /// No facts yet, judged at `now`.
    pub fn at(now: DateTime<Utc>) -> KnownFacts {
        KnownFacts {
            now,
            ..KnownFacts::default()
        }
    }

    /// Apply a pick to its pool: returns the pool's events (to store); the pool advances
    /// and, in a capped pool, the member holds one more open lead.
    pub fn apply_pick(
        &mut self,
        pool: PoolId,
        command: PoolCommand,
    ) -> Result<Vec<PoolEvent>, PoolError> {
        let state = self.pools.get_mut(&pool).ok_or(PoolError::PoolNotFound)?;
        let events = state.decide(command)?;
        for event in &events {
            state.evolve(event);
            if let PoolEvent::PoolMemberPicked { member, .. } = event {
                if state.capped(*member) {
                    *self.open.entry(*member).or_default() += 1;
                }
            }
        }
        Ok(events)
    }
}

impl Facts for KnownFacts {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn user(&self, user: PartnerUserId) -> Option<Standing> {
        self.users.get(&user).copied()
    }

    fn queue_exists(&self, queue: QueueId) -> bool {
        self.queues.contains(&queue)
    }

    fn queue_claimable(&self, queue: QueueId) -> bool {
        !self.unclaimable.contains(&queue)
    }

    fn pool(&self, pool: PoolId) -> Option<&Pool> {
        self.pools.get(&pool)
    }

    fn open_leads(&self, member: Member) -> u32 {
        self.open.get(&member).copied().unwrap_or(0)
    }

    fn duplicate_of(&self, lead: LeadId) -> Option<(LeadId, Owner)> {
        self.duplicates.get(&lead).copied()
    }
}
