//! The Pool aggregate: a round-robin pool of partner users and queues, with integer
//! weights, an optional cap of open leads per member, an optional acceptance deadline of
//! its offers, and its rotation. Every pick is
//! an event, so any number of routers share one fair rotation through optimistic
//! concurrency; a repeated pick for the same trigger returns the first answer and moves
//! nothing. Pure: no I/O, no clock; candidates' verdicts arrive in the command.

use crate::deadline::Deadline;
use crate::decider::{ensure, required_name, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, LeadId, OrgId, PoolId};
use crate::routing::rotation::{Member, Rotation, Slot};
use crate::routing::{is_assignable, Candidate, NotRouted};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// Picks remembered for answering a repeated trigger (redeliveries come soon after).
const REMEMBERED_PICKS: usize = 4096;
/// Largest weight a member may have (shares stay within ±1 up to it).
pub const MAX_WEIGHT: u32 = 100;

/// Commands on a pool.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolCommand {
    /// Create the pool.
    CreatePool {
        /// Its id.
        pool_id: PoolId,
        /// Its org.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Most open leads a member may hold for new automatic assignments.
        cap: Option<u32>,
        /// Who creates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a member (weight 1 when not given; 0 is refused).
    AddPoolMember {
        /// The member.
        member: Member,
        /// Its weight.
        weight: Option<u32>,
        /// Its own cap of open leads, instead of the pool's.
        cap: Option<u32>,
        /// Who adds it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change a member's weight or own cap; it keeps its place.
    ChangePoolMember {
        /// The member.
        member: Member,
        /// Its new weight (unchanged when `None`).
        weight: Option<u32>,
        /// Its own cap: unchanged when `None`, the pool's cap again when `Some(None)`.
        cap: Option<Option<u32>>,
        /// Who changes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a member; the others keep their places.
    RemovePoolMember {
        /// The member.
        member: Member,
        /// Who removes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set how long the pool's offers stand before they lapse (`None`: the org's default),
    /// unless the rule entry that sends leads to it says otherwise.
    SetAcceptanceDeadline {
        /// The deadline.
        deadline: Option<Deadline>,
        /// Who sets it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Give the next lead to the member whose turn it is among the assignable ones.
    PickMember {
        /// The lead.
        lead_id: LeadId,
        /// What triggered the routing (an event or re-run id): a repeat is answered alike.
        trigger: Uuid,
        /// Looked up before the command: each member's verdict.
        candidates: Vec<Candidate>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PoolEvent {
    /// The pool exists.
    PoolCreated {
        /// Its id.
        pool_id: PoolId,
        /// Its org.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Cap of open leads per member.
        cap: Option<u32>,
        /// Who created it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member joined.
    PoolMemberAdded {
        /// The member.
        member: Member,
        /// Its weight.
        weight: u32,
        /// Joined at the back of the line (version 1.2); older events joined level with
        /// the member due then.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        at_back: bool,
        /// Its own cap of open leads, instead of the pool's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<u32>,
        /// Who added it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member's weight or own cap changed; it kept its place.
    PoolMemberChanged {
        /// The member.
        member: Member,
        /// Its weight now.
        weight: u32,
        /// Its own cap now (`None`: the pool's).
        cap: Option<u32>,
        /// Who changed it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// How long the pool's offers stand changed.
    PoolAcceptanceDeadlineSet {
        /// The deadline (`None`: the org's default).
        deadline: Option<Deadline>,
        /// Who set it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member left.
    PoolMemberRemoved {
        /// The member.
        member: Member,
        /// Who removed it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member got the next lead.
    ///
    /// Since version 1.1 the event records who the pick passed over instead of the whole
    /// rotation after it: replaying the pick on the rotation before it (the pool's state at
    /// the previous event) gives the same member and the same rotation, so it is not
    /// stored again with every lead.
    PoolMemberPicked {
        /// The lead.
        lead_id: LeadId,
        /// What triggered it.
        trigger: Uuid,
        /// Who got it.
        member: Member,
        /// Members of the rotation that could not take the lead (not assignable, paused or
        /// at their cap), passed over by the pick.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<Member>,
        /// The rotation after the pick, as version 1.0 stored it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rotation: Option<Rotation>,
        /// Picked by the place-in-line rule (version 1.2); older picks replay by the rule
        /// they were decided by ([`Rotation::pick_levelled`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        place: bool,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(PoolEvent, version "1.2", {
    PoolCreated => "PoolCreated",
    PoolMemberAdded => "PoolMemberAdded",
    PoolMemberChanged => "PoolMemberChanged",
    PoolMemberRemoved => "PoolMemberRemoved",
    PoolMemberPicked => "PoolMemberPicked",
    PoolAcceptanceDeadlineSet => "PoolAcceptanceDeadlineSet",
});

/// Why a pool command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The pool already exists.
    #[error("the pool already exists")]
    PoolAlreadyExists,
    /// The pool does not exist.
    #[error("the pool does not exist")]
    PoolNotFound,
    /// A name is required.
    #[error("the pool name must not be empty")]
    NameRequired,
    /// The name breaks the limits of a name (`limits::line`).
    #[error("{0}")]
    InvalidName(crate::limits::TextFault),
    /// Weights are integers from 1 to [`MAX_WEIGHT`].
    #[error("a member's weight must be an integer from 1 to {MAX_WEIGHT}")]
    InvalidWeight,
    /// A cap of 0 would block every member.
    #[error("a cap must be at least 1")]
    InvalidCap,
    /// Already a member.
    #[error("already a member of the pool")]
    AlreadyMember,
    /// Not a member.
    #[error("not a member of the pool")]
    NotAMember,
    /// Nobody may take the lead now.
    #[error("no member of the pool may take the lead: {}", .0.code())]
    NoEligibleMember(NotRouted),
    /// The acceptance deadline is out of bounds.
    #[error("acceptance_deadline.{0}")]
    InvalidDeadline(String),
}

impl Refusal for PoolError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            PoolError::PoolAlreadyExists => ("pool_already_exists", Conflict),
            PoolError::PoolNotFound => ("pool_not_found", NotFound),
            PoolError::NameRequired => ("name_required", InvalidInput),
            PoolError::InvalidName(_) => ("invalid_name", InvalidInput),
            PoolError::InvalidWeight => ("invalid_weight", InvalidInput),
            PoolError::InvalidCap => ("invalid_cap", InvalidInput),
            PoolError::InvalidDeadline(_) => ("invalid_deadline", InvalidInput),
            PoolError::AlreadyMember => ("already_member", Conflict),
            PoolError::NotAMember => ("not_a_member", Conflict),
            PoolError::NoEligibleMember(reason) => (reason.code(), Conflict),
        }
    }
}

/// State of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Set once created.
    pub id: Option<PoolId>,
    /// Its org.
    pub org_id: Option<OrgId>,
    /// Display name.
    pub name: String,
    /// Cap of open leads per member.
    pub cap: Option<u32>,
    /// Members and their places.
    pub rotation: Rotation,
    /// Recent picks by trigger, oldest first (bounded).
    pub recent_picks: VecDeque<(Uuid, Member)>,
    /// How long its offers stand (`None`: the org's default).
    #[serde(default)]
    pub acceptance_deadline: Option<Deadline>,
}

impl Pool {
    /// The member a trigger already picked, if it is still remembered.
    pub fn picked_for(&self, trigger: Uuid) -> Option<Member> {
        self.recent_picks
            .iter()
            .find(|(t, _)| *t == trigger)
            .map(|(_, m)| *m)
    }

    /// Whether `member` has a cap of open leads (its own or the pool's).
    pub fn capped(&self, member: Member) -> bool {
        self.cap_of(member).is_some()
    }

    /// The cap of open leads that applies to `member`: its own, else the pool's.
    pub fn cap_of(&self, member: Member) -> Option<u32> {
        self.rotation
            .slots
            .iter()
            .find(|s| s.member == member)
            .and_then(|s| s.cap)
            .or(self.cap)
    }

    /// The rotation's slots (the decision record's "pool state").
    pub fn slots(&self) -> &[Slot] {
        &self.rotation.slots
    }

    /// The member whose turn it is among the assignable `candidates`, and the rotation
    /// after the pick; `None` when nobody may take the lead. What a `PickMember` command
    /// picks, without deciding it.
    pub fn next_pick(&self, candidates: &[Candidate]) -> Option<(Member, Rotation)> {
        self.rotation
            .pick(|member| is_assignable(candidates, member))
    }

    fn pick(
        &self,
        lead_id: LeadId,
        trigger: Uuid,
        candidates: &[Candidate],
        at: DateTime<Utc>,
    ) -> Result<Vec<PoolEvent>, PoolError> {
        if self.picked_for(trigger).is_some() {
            return Ok(vec![]);
        }
        let (member, _) = self
            .next_pick(candidates)
            .ok_or_else(|| PoolError::NoEligibleMember(NotRouted::for_candidates(candidates)))?;
        let skipped = self
            .rotation
            .slots
            .iter()
            .map(|slot| slot.member)
            .filter(|member| !is_assignable(candidates, *member))
            .collect();
        Ok(vec![PoolEvent::PoolMemberPicked {
            lead_id,
            trigger,
            member,
            skipped,
            rotation: None,
            place: true,
            at,
        }])
    }
}

impl Decider for Pool {
    type Command = PoolCommand;
    type Event = PoolEvent;
    type Error = PoolError;

    fn decide(&self, command: PoolCommand) -> Result<Vec<PoolEvent>, PoolError> {
        ensure(
            self.id.is_some() || matches!(command, PoolCommand::CreatePool { .. }),
            PoolError::PoolNotFound,
        )?;
        match command {
            PoolCommand::CreatePool {
                pool_id,
                org_id,
                name,
                cap,
                actor,
                at,
            } => {
                ensure(self.id.is_none(), PoolError::PoolAlreadyExists)?;
                let name = required_name(&name, PoolError::NameRequired, PoolError::InvalidName)?;
                ensure(cap != Some(0), PoolError::InvalidCap)?;
                Ok(vec![PoolEvent::PoolCreated {
                    pool_id,
                    org_id,
                    name,
                    cap,
                    actor,
                    at,
                }])
            }
            PoolCommand::AddPoolMember {
                member,
                weight,
                cap,
                actor,
                at,
            } => {
                let weight = weight.unwrap_or(1);
                ensure((1..=MAX_WEIGHT).contains(&weight), PoolError::InvalidWeight)?;
                ensure(cap != Some(0), PoolError::InvalidCap)?;
                ensure(!self.rotation.contains(member), PoolError::AlreadyMember)?;
                Ok(vec![PoolEvent::PoolMemberAdded {
                    member,
                    weight,
                    at_back: true,
                    cap,
                    actor,
                    at,
                }])
            }
            PoolCommand::ChangePoolMember {
                member,
                weight,
                cap,
                actor,
                at,
            } => {
                let slot = self
                    .rotation
                    .slots
                    .iter()
                    .find(|s| s.member == member)
                    .ok_or(PoolError::NotAMember)?;
                let weight = weight.unwrap_or(slot.weight);
                ensure((1..=MAX_WEIGHT).contains(&weight), PoolError::InvalidWeight)?;
                let cap = cap.unwrap_or(slot.cap);
                ensure(cap != Some(0), PoolError::InvalidCap)?;
                if weight == slot.weight && cap == slot.cap {
                    return Ok(vec![]);
                }
                Ok(vec![PoolEvent::PoolMemberChanged {
                    member,
                    weight,
                    cap,
                    actor,
                    at,
                }])
            }
            PoolCommand::RemovePoolMember { member, actor, at } => {
                ensure(self.rotation.contains(member), PoolError::NotAMember)?;
                Ok(vec![PoolEvent::PoolMemberRemoved { member, actor, at }])
            }
            PoolCommand::PickMember {
                lead_id,
                trigger,
                candidates,
                at,
            } => self.pick(lead_id, trigger, &candidates, at),
            PoolCommand::SetAcceptanceDeadline {
                deadline,
                actor,
                at,
            } => {
                if let Some(problem) = deadline.and_then(Deadline::problem) {
                    return Err(PoolError::InvalidDeadline(problem));
                }
                if deadline == self.acceptance_deadline {
                    return Ok(vec![]);
                }
                Ok(vec![PoolEvent::PoolAcceptanceDeadlineSet {
                    deadline,
                    actor,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &PoolEvent) {
        match event {
            PoolEvent::PoolCreated {
                pool_id,
                org_id,
                name,
                cap,
                ..
            } => {
                self.id = Some(*pool_id);
                self.org_id = Some(*org_id);
                self.name = name.clone();
                self.cap = *cap;
            }
            PoolEvent::PoolMemberAdded {
                member,
                weight,
                at_back,
                cap,
                ..
            } => {
                if *at_back {
                    self.rotation.add_at_back(*member, *weight);
                } else {
                    self.rotation.add(*member, *weight);
                }
                if cap.is_some() {
                    self.rotation.change(*member, *weight, *cap);
                }
            }
            PoolEvent::PoolMemberChanged {
                member,
                weight,
                cap,
                ..
            } => self.rotation.change(*member, *weight, *cap),
            PoolEvent::PoolMemberRemoved { member, .. } => self.rotation.remove(*member),
            PoolEvent::PoolAcceptanceDeadlineSet { deadline, .. } => {
                self.acceptance_deadline = *deadline;
            }
            PoolEvent::PoolMemberPicked {
                trigger,
                member,
                skipped,
                rotation,
                place,
                ..
            } => {
                let eligible = |m| !skipped.contains(&m);
                let replayed = match rotation {
                    Some(rotation) => Some((*member, rotation.clone())),
                    None if *place => self.rotation.pick(eligible),
                    None => self.rotation.pick_levelled(eligible),
                };
                if let Some((picked, rotation)) = replayed {
                    debug_assert_eq!(picked, *member, "a replayed pick gives the same member");
                    self.rotation = rotation;
                }
                self.recent_picks.push_back((*trigger, *member));
                if self.recent_picks.len() > REMEMBERED_PICKS {
                    self.recent_picks.pop_front();
                }
            }
        }
    }
}

crate::cqrs_aggregate!(Pool, "Pool");
