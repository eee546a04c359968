//! The Lead aggregate: a lead received from an upstream CRM and every change of its owner
//! (manual reassignment, enqueue, claim, routing), and the offer a partner user accepts,
//! declines or lets lapse. Pure: no I/O, no clock; facts about the target (is it
//! assignable, is the claimant a member, is the decline reason the org's) arrive in the
//! command.
//!
//! # Offers
//! A lead given to a partner user (by hand, by the rules, by import) is *offered* to them
//! until they accept it ([`Offer`]); a claim from a queue is an acceptance. A decline or a
//! lapsed deadline lets the lead go (nobody owns it; the caller routes it again) and closes
//! it to that partner user for good (`declined`, `lapsed`: the routing engine judges them
//! `declined_before` / `lapsed_before`).

use crate::decider::{ensure, Decider, Refusal, RefusalKind};
use crate::ids::{
    Actor, BulkOperationId, LeadId, OrgId, Owner, PartnerUserId, QueueId, UpstreamRef,
};
use crate::partner_user::NotAssignable;
use crate::routing::rules::Target;
use crate::routing::{is_closed, Decision, NotRouted, Trigger};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

mod events;
#[cfg(test)]
mod tests;

pub use events::{HistoryLine, HoldResolution, LeadEvent, OwnerChange, OwnerChangeCause};

pub use crate::fields::LeadFields;
pub use crate::routing::RouteOutcome;

/// Commands on a lead.
#[derive(Debug, Clone, PartialEq)]
pub enum LeadCommand {
    /// A lead created or updated upstream; a repeated upstream event id is a no-op.
    ReceiveLead(ReceiveLead),
    /// Manual owner change to a partner user, a queue or an internal user.
    ReassignLead {
        /// The new owner.
        to: Owner,
        /// Looked up before the command: whether the new owner may receive the lead.
        target: Result<(), NotAssignable>,
        /// Send the new owner a notification email.
        notify: bool,
        /// The bulk operation this move belongs to (cause `bulk`); a lead moves at most once
        /// per operation: a repeat is a no-op.
        operation: Option<BulkOperationId>,
        /// When the offer lapses unless accepted (a partner user as new owner only).
        deadline: Option<DateTime<Utc>>,
        /// When the offeree is reminded (with a deadline only).
        remind_at: Option<DateTime<Utc>>,
        /// Who reassigns.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Put the lead into a partner queue.
    EnqueueLead {
        /// The queue.
        queue_id: QueueId,
        /// Who enqueues.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member of the owning queue takes the lead.
    ClaimLead(ClaimLead),
    /// Apply an automatic routing decision (the router's command).
    RouteLead(RouteLead),
    /// The partner user the lead is offered to accepts it; a repeat is a no-op.
    AcceptLead {
        /// The partner user.
        by: PartnerUserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user the lead is offered to declines it.
    DeclineLead(DeclineLead),
    /// Remind the offeree of an offer whose reminder time came (the scheduler's command).
    /// A no-op unless the lead is still offered with exactly this deadline, not yet
    /// reminded, and the reminder time has passed.
    RemindOffer {
        /// The deadline of the offer the timer was set for.
        deadline: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Resolve a hold as a possible duplicate (an admin or the owning channel manager).
    ResolveHold {
        /// How.
        resolution: HoldResolution,
        /// Who.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Recall an offer whose deadline passed (the scheduler's command). A no-op unless the
    /// lead is still offered with exactly this deadline and it has passed, so a timer fired
    /// twice, late or for an earlier offer recalls nothing.
    LapseOffer {
        /// The deadline the timer was set for.
        deadline: DateTime<Utc>,
        /// Who recalls (the scheduler).
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A partner user declines the lead offered to them.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclineLead {
    /// The partner user.
    pub by: PartnerUserId,
    /// The reason code.
    pub reason: String,
    /// Free text (required with the reason `other`).
    pub note: Option<String>,
    /// Looked up before the command: whether `reason` is one of the org's decline reasons.
    pub reason_known: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// The decline reason that needs a note saying what the other reason is.
pub const OTHER_REASON: &str = "other";

/// A pending offer: the partner user who owns the lead and has not accepted it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The partner user.
    pub to: PartnerUserId,
    /// When it was offered.
    pub at: DateTime<Utc>,
    /// When it lapses unless accepted; `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the offeree is reminded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<DateTime<Utc>>,
    /// The reminder went out.
    #[serde(default)]
    pub reminded: bool,
}

/// A lead created or updated upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveLead {
    /// `LeadId::for_upstream(org_id, &upstream)`.
    pub lead_id: LeadId,
    /// The org the lead belongs to.
    pub org_id: OrgId,
    /// Upstream system and lead id.
    pub upstream: UpstreamRef,
    /// The upstream event's own id, used to drop duplicates.
    pub upstream_event_id: String,
    /// Field values (all of them on creation, the changed ones on update).
    pub fields: LeadFields,
    /// False when the upstream event opts out of automatic routing.
    pub route: bool,
    /// When it happened upstream; an event older than the newest applied is stale.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The owner the CRM already gave a new lead (a partner user or a queue): recorded as
    /// its first owner (cause `import`), and the lead is not routed. Ignored on updates.
    pub owner: Option<Owner>,
    /// Looked up before the command: whether `owner` exists in the org.
    pub owner_known: bool,
    /// Who delivered it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// A member of the owning queue takes the lead.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimLead {
    /// The queue the claimant claims from.
    pub queue_id: QueueId,
    /// The claiming partner user.
    pub claimant: PartnerUserId,
    /// Looked up before the command: is the claimant a member of that queue.
    pub claimant_is_member: bool,
    /// Looked up before the command: may the claimant receive the lead.
    pub claimant_assignable: Result<(), NotAssignable>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An automatic routing decision to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteLead {
    /// What triggered the routing (an event or re-run id); a repeat is a no-op.
    pub trigger: Uuid,
    /// The decision record.
    pub decision: Decision,
    /// What to do.
    pub outcome: RouteOutcome,
    /// When an offer to a partner user lapses unless accepted (applies only when the
    /// outcome gives the lead to a partner user).
    pub deadline: Option<DateTime<Utc>>,
    /// When the offeree is reminded (with a deadline only).
    pub remind_at: Option<DateTime<Utc>>,
    /// Who decides (the router).
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a lead command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    /// The lead does not exist.
    #[error("the lead does not exist")]
    LeadNotFound,
    /// Upstream events must carry their own id.
    #[error("the upstream event id must not be empty")]
    UpstreamEventIdRequired,
    /// Updates may not grow a lead past the number of fields one event may carry.
    #[error("the lead would hold more than {} fields", crate::limits::MAX_FIELDS)]
    TooManyFields,
    /// The target may not receive leads.
    #[error("{0}")]
    NotAssignable(NotAssignable),
    /// The lead already has that owner.
    #[error("the lead already has that owner")]
    AlreadyOwner,
    /// The lead is not in the queue it is claimed from.
    #[error("the lead is not in that queue")]
    NotInQueue,
    /// Another member claimed the lead first.
    #[error("the lead was already claimed from that queue")]
    AlreadyClaimed,
    /// Only members of the queue may claim from it.
    #[error("the partner user is not a member of that queue")]
    NotAQueueMember,
    /// The owner a new lead arrived with is no partner user or queue of the org.
    #[error("the lead's owner is no partner user or queue of the org (`owner`)")]
    UnknownOwner,
    /// Accept or decline by someone the lead is not offered to.
    #[error("the lead is not offered to this partner user")]
    NotOffered,
    /// Decline of a lead the partner user already accepted.
    #[error("the lead was already accepted; ask its channel manager to reassign it")]
    AlreadyAccepted,
    /// The decline reason is not one of the org's.
    #[error("`reason` is not one of the org's decline reasons")]
    UnknownDeclineReason,
    /// The reason `other` needs a note.
    #[error("`note` is required with the reason `other`")]
    DeclineNoteRequired,
    /// The note or reason breaks the limits of a note.
    #[error("{0}")]
    InvalidNote(crate::limits::TextFault),
    /// A hold is resolved that does not exist (never held, or resolved already).
    #[error("the lead is not held as a possible duplicate")]
    NotHeld,
}

impl Refusal for LeadError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            LeadError::LeadNotFound => ("lead_not_found", NotFound),
            LeadError::UpstreamEventIdRequired => ("upstream_event_id_required", InvalidInput),
            LeadError::TooManyFields => ("too_many_fields", InvalidInput),
            LeadError::UnknownOwner => ("unknown_owner", InvalidInput),
            LeadError::NotAssignable(reason) => (reason.code(), Conflict),
            LeadError::AlreadyOwner => ("already_owner", Conflict),
            LeadError::NotInQueue => ("not_in_queue", Conflict),
            LeadError::AlreadyClaimed => ("already_claimed", Conflict),
            LeadError::NotAQueueMember => ("not_a_queue_member", Conflict),
            LeadError::NotOffered => ("not_offered", Conflict),
            LeadError::AlreadyAccepted => ("already_accepted", Conflict),
            LeadError::UnknownDeclineReason => ("unknown_decline_reason", InvalidInput),
            LeadError::DeclineNoteRequired => ("decline_note_required", InvalidInput),
            LeadError::InvalidNote(_) => ("invalid_note", InvalidInput),
            LeadError::NotHeld => ("not_held", Conflict),
        }
    }
}

/// State of a lead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    /// Set once received.
    pub id: Option<LeadId>,
    /// Its org.
    pub org_id: Option<OrgId>,
    /// Where it comes from.
    pub upstream: Option<UpstreamRef>,
    /// Current field values.
    pub fields: LeadFields,
    /// Current owner, if any.
    pub owner: Option<Owner>,
    /// The latest owner change.
    pub last_change: Option<OwnerChange>,
    /// Upstream event ids already applied (duplicates are no-ops).
    pub seen_upstream_events: BTreeSet<String>,
    /// The newest upstream `occurred_at` applied (older events are stale).
    #[serde(default)]
    pub upstream_occurred_at: Option<DateTime<Utc>>,
    /// Routing triggers already decided (a redelivered trigger is a no-op).
    pub routed_triggers: BTreeSet<Uuid>,
    /// Bulk operations that moved the lead (a repeated move of one operation is a no-op).
    pub bulk_operations: BTreeSet<BulkOperationId>,
    /// Why it waits for its target (left unrouted for capacity or eligibility, no owner);
    /// `None` when it does not wait.
    #[serde(default)]
    pub waiting: Option<NotRouted>,
    /// The target it waits for (as its decision recorded it), while it waits.
    #[serde(default)]
    pub waiting_for: Option<Target>,
    /// The offer to its owner, while that partner user has not accepted it.
    #[serde(default)]
    pub offer: Option<Offer>,
    /// Its owner is a partner user who accepted it (or claimed it from a queue).
    #[serde(default)]
    pub accepted: bool,
    /// Partner users who declined it: it is never offered to them again.
    #[serde(default)]
    pub declined: BTreeSet<PartnerUserId>,
    /// Partner users who let an offer of it lapse: it is never offered to them again.
    #[serde(default)]
    pub lapsed: BTreeSet<PartnerUserId>,
    /// Held as a possible duplicate of this open lead (with its owner), until resolved.
    #[serde(default)]
    pub held: Option<(LeadId, Owner)>,
    /// Released from a hold to be routed anyway: not matched against open leads again.
    #[serde(default)]
    pub duplicate_cleared: bool,
    /// Merged into this lead: its upstream events update that lead.
    #[serde(default)]
    pub merged_into: Option<LeadId>,
    /// Rejected as a duplicate: never routed.
    #[serde(default)]
    pub rejected: bool,
}

impl Lead {
    /// The partner user or queue whose capacity the lead takes: its owner while the lead is
    /// open (an internal user's leads are not counted against any cap).
    pub fn holder(&self) -> Option<Uuid> {
        match self.owner {
            _ if is_closed(&self.fields) => None,
            Some(Owner::PartnerUser(user)) => Some(user.0),
            Some(Owner::Queue(queue)) => Some(queue.0),
            Some(Owner::InternalUser(_)) | None => None,
        }
    }

    fn change(
        &self,
        to: Owner,
        actor: Actor,
        cause: OwnerChangeCause,
        at: DateTime<Utc>,
    ) -> OwnerChange {
        OwnerChange {
            from: self.owner,
            to,
            actor,
            cause,
            at,
        }
    }

    /// The lead's new owner after `change`: offered when it is a partner user (with
    /// `deadline`), not accepted by anyone yet.
    fn take(
        &mut self,
        change: &OwnerChange,
        deadline: Option<DateTime<Utc>>,
        remind_at: Option<DateTime<Utc>>,
    ) {
        self.waiting = None;
        self.owner = Some(change.to);
        self.last_change = Some(change.clone());
        self.accepted = false;
        self.offer = match change.to {
            Owner::PartnerUser(to) => Some(Offer {
                to,
                at: change.at,
                deadline,
                remind_at: deadline.and(remind_at),
                reminded: false,
            }),
            Owner::Queue(_) | Owner::InternalUser(_) => None,
        };
    }

    /// The lead let go by its offeree: nobody owns it.
    fn let_go(&mut self) {
        self.owner = None;
        self.offer = None;
        self.accepted = false;
    }

    fn receive(&self, command: ReceiveLead) -> Result<Vec<LeadEvent>, LeadError> {
        let ReceiveLead {
            lead_id,
            org_id,
            upstream,
            upstream_event_id,
            fields,
            route,
            occurred_at,
            owner,
            owner_known,
            actor,
            at,
        } = command;
        ensure(
            !upstream_event_id.trim().is_empty(),
            LeadError::UpstreamEventIdRequired,
        )?;
        if self.seen_upstream_events.contains(&upstream_event_id) {
            return Ok(vec![]);
        }
        if self.id.is_none() {
            ensure(owner.is_none() || owner_known, LeadError::UnknownOwner)?;
            let mut events = vec![LeadEvent::LeadReceived {
                lead_id,
                org_id,
                upstream,
                upstream_event_id,
                fields,
                // A lead that arrives owned is not routed: no rotation moves for it.
                route: route && owner.is_none(),
                occurred_at,
                actor: actor.clone(),
                at,
            }];
            if let Some(owner) = owner {
                events.push(LeadEvent::LeadReassigned {
                    change: self.change(owner, actor, OwnerChangeCause::Import, at),
                    notify: false,
                    operation: None,
                    deadline: None,
                    remind_at: None,
                });
            }
            return Ok(events);
        }
        // Each event is bounded; so is what updates add up to on one lead (its read-model
        // row and every email about it carry them all).
        let added = fields
            .keys()
            .filter(|name| !self.fields.contains_key(*name))
            .count();
        ensure(
            self.fields.len() + added <= crate::limits::MAX_FIELDS,
            LeadError::TooManyFields,
        )?;
        match (occurred_at, self.upstream_occurred_at) {
            (Some(occurred_at), Some(newest_applied)) if occurred_at < newest_applied => {
                let filled = fields
                    .into_iter()
                    .filter(|(name, _)| !self.fields.contains_key(name))
                    .collect();
                return Ok(vec![LeadEvent::LeadUpdateStale {
                    upstream_event_id,
                    occurred_at,
                    newest_applied,
                    filled,
                    actor,
                    at,
                }]);
            }
            _ => {}
        }
        let changed: LeadFields = fields
            .into_iter()
            .filter(|(name, value)| self.fields.get(name) != Some(value))
            .collect();
        Ok(vec![LeadEvent::LeadUpdated {
            upstream_event_id,
            changed,
            route,
            occurred_at,
            actor,
            at,
        }])
    }

    fn route(&self, command: RouteLead) -> Result<Vec<LeadEvent>, LeadError> {
        let RouteLead {
            trigger,
            decision,
            outcome,
            deadline,
            remind_at,
            actor,
            at,
        } = command;
        // Held, merged or rejected: the rules do not touch it (a release routes it).
        let parked = self.held.is_some() || self.merged_into.is_some() || self.rejected;
        if self.routed_triggers.contains(&trigger) || parked {
            return Ok(vec![]);
        }
        let cause = match decision.trigger {
            Trigger::Rerun => OwnerChangeCause::Rerun,
            // A `freed` decision routes only a lead that still waits, and only to a place;
            // anything else records nothing.
            Trigger::Freed
                if self.waiting.is_none() || !matches!(outcome, RouteOutcome::Assign { .. }) =>
            {
                return Ok(vec![]);
            }
            Trigger::Received
            | Trigger::Updated
            | Trigger::Freed
            | Trigger::Declined
            | Trigger::Lapsed
            | Trigger::Released => OwnerChangeCause::Rule,
        };
        let kept = LeadEvent::LeadOwnerKept {
            trigger,
            decision: decision.clone(),
            at,
        };
        Ok(vec![match outcome {
            RouteOutcome::Hold { of, owner } => LeadEvent::LeadHeld {
                trigger,
                of,
                owner,
                decision,
                at,
            },
            RouteOutcome::Leave(reason) => LeadEvent::LeadNotRouted {
                trigger,
                reason,
                decision,
                at,
            },
            RouteOutcome::Keep => kept,
            RouteOutcome::Assign { to, .. } if self.owner == Some(to) => kept,
            RouteOutcome::Assign { to, notify, target } => {
                target.map_err(LeadError::NotAssignable)?;
                LeadEvent::LeadRouted {
                    trigger,
                    change: self.change(to, actor, cause, at),
                    notify,
                    decision,
                    deadline: offered(to, deadline),
                    remind_at: offered(to, deadline.and(remind_at)),
                }
            }
        }])
    }

    /// The offer to `user`, if the lead is offered to them; refused with `already_accepted`
    /// when they accepted it, else `not_offered`.
    fn offer_to(&self, user: PartnerUserId) -> Result<Offer, LeadError> {
        match self.offer {
            Some(offer) if offer.to == user => Ok(offer),
            _ if self.accepted && self.owner == Some(Owner::PartnerUser(user)) => {
                Err(LeadError::AlreadyAccepted)
            }
            _ => Err(LeadError::NotOffered),
        }
    }

    fn accept(&self, by: PartnerUserId, at: DateTime<Utc>) -> Result<Vec<LeadEvent>, LeadError> {
        match self.offer_to(by) {
            Err(LeadError::AlreadyAccepted) => Ok(vec![]),
            Err(refused) => Err(refused),
            Ok(_) => Ok(vec![LeadEvent::LeadAccepted { by, at }]),
        }
    }

    fn decline(&self, command: DeclineLead) -> Result<Vec<LeadEvent>, LeadError> {
        let DeclineLead {
            by,
            reason,
            note,
            reason_known,
            at,
        } = command;
        self.offer_to(by)?;
        let reason = crate::limits::line("reason", &reason, crate::limits::MAX_CODE_CHARS)
            .map_err(|fault| match fault {
                crate::limits::TextFault::Empty(_) => LeadError::UnknownDeclineReason,
                fault => LeadError::InvalidNote(fault),
            })?;
        ensure(reason_known, LeadError::UnknownDeclineReason)?;
        let note = match note.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(note) => {
                crate::limits::text("note", note, crate::limits::MAX_NOTE_CHARS)
                    .map_err(LeadError::InvalidNote)?;
                Some(note.to_string())
            }
        };
        ensure(
            reason != OTHER_REASON || note.is_some(),
            LeadError::DeclineNoteRequired,
        )?;
        Ok(vec![LeadEvent::LeadDeclined {
            by,
            reason,
            note,
            at,
        }])
    }

    fn remind(&self, deadline: DateTime<Utc>, at: DateTime<Utc>) -> Vec<LeadEvent> {
        match self.offer {
            Some(offer)
                if offer.deadline == Some(deadline)
                    && !offer.reminded
                    && offer.remind_at.is_some_and(|remind| remind <= at)
                    && !is_closed(&self.fields) =>
            {
                vec![LeadEvent::LeadOfferReminded {
                    to: offer.to,
                    deadline,
                    at,
                }]
            }
            _ => vec![],
        }
    }

    fn lapse(
        &self,
        deadline: DateTime<Utc>,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Vec<LeadEvent>, LeadError> {
        match self.offer {
            Some(offer)
                if offer.deadline == Some(deadline)
                    && deadline <= at
                    && !is_closed(&self.fields) =>
            {
                Ok(vec![LeadEvent::LeadOfferLapsed {
                    from: offer.to,
                    deadline,
                    actor,
                    at,
                }])
            }
            _ => Ok(vec![]),
        }
    }

    fn claim(&self, command: ClaimLead) -> Result<Vec<LeadEvent>, LeadError> {
        let ClaimLead {
            queue_id,
            claimant,
            claimant_is_member,
            claimant_assignable,
            at,
        } = command;
        if self.owner != Some(Owner::Queue(queue_id)) {
            let claimed_from_queue = matches!(
                &self.last_change,
                Some(OwnerChange { cause: OwnerChangeCause::Claim, from: Some(Owner::Queue(q)), .. }) if *q == queue_id
            );
            return Err(if claimed_from_queue {
                LeadError::AlreadyClaimed
            } else {
                LeadError::NotInQueue
            });
        }
        ensure(claimant_is_member, LeadError::NotAQueueMember)?;
        claimant_assignable.map_err(LeadError::NotAssignable)?;
        let change = self.change(
            Owner::PartnerUser(claimant),
            Actor::PartnerUser(claimant),
            OwnerChangeCause::Claim,
            at,
        );
        Ok(vec![LeadEvent::LeadClaimed { change }])
    }
}

impl Decider for Lead {
    type Command = LeadCommand;
    type Event = LeadEvent;
    type Error = LeadError;

    fn decide(&self, command: LeadCommand) -> Result<Vec<LeadEvent>, LeadError> {
        ensure(
            self.id.is_some() || matches!(command, LeadCommand::ReceiveLead(_)),
            LeadError::LeadNotFound,
        )?;
        match command {
            LeadCommand::ReassignLead {
                to,
                target,
                notify,
                operation,
                deadline,
                remind_at,
                actor,
                at,
            } => {
                if operation.is_some_and(|op| self.bulk_operations.contains(&op)) {
                    return Ok(vec![]);
                }
                ensure(self.owner != Some(to), LeadError::AlreadyOwner)?;
                target.map_err(LeadError::NotAssignable)?;
                let cause = match operation {
                    Some(_) => OwnerChangeCause::Bulk,
                    None => OwnerChangeCause::Manual,
                };
                let change = self.change(to, actor, cause, at);
                Ok(vec![LeadEvent::LeadReassigned {
                    change,
                    notify,
                    operation,
                    deadline: offered(to, deadline),
                    remind_at: offered(to, deadline.and(remind_at)),
                }])
            }
            LeadCommand::EnqueueLead {
                queue_id,
                actor,
                at,
            } => {
                ensure(
                    self.owner != Some(Owner::Queue(queue_id)),
                    LeadError::AlreadyOwner,
                )?;
                let change =
                    self.change(Owner::Queue(queue_id), actor, OwnerChangeCause::Enqueue, at);
                Ok(vec![LeadEvent::LeadEnqueued { change }])
            }
            LeadCommand::ClaimLead(claim) => self.claim(claim),
            LeadCommand::ReceiveLead(receive) => self.receive(receive),
            LeadCommand::RouteLead(route) => self.route(route),
            LeadCommand::AcceptLead { by, at } => self.accept(by, at),
            LeadCommand::DeclineLead(decline) => self.decline(decline),
            LeadCommand::LapseOffer {
                deadline,
                actor,
                at,
            } => self.lapse(deadline, actor, at),
            LeadCommand::RemindOffer { deadline, at } => Ok(self.remind(deadline, at)),
            LeadCommand::ResolveHold {
                resolution,
                actor,
                at,
            } => {
                let (of, _) = self.held.ok_or(LeadError::NotHeld)?;
                Ok(vec![LeadEvent::LeadHoldResolved {
                    resolution,
                    into: (resolution == HoldResolution::Merge).then_some(of),
                    actor,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::LeadReceived {
                lead_id,
                org_id,
                upstream,
                upstream_event_id,
                fields,
                occurred_at,
                ..
            } => {
                self.id = Some(*lead_id);
                self.org_id = Some(*org_id);
                self.upstream = Some(upstream.clone());
                self.fields = fields.clone();
                self.seen_upstream_events.insert(upstream_event_id.clone());
                self.upstream_occurred_at = *occurred_at;
            }
            LeadEvent::LeadUpdated {
                upstream_event_id,
                changed,
                occurred_at,
                ..
            } => {
                self.fields.extend(changed.clone());
                self.seen_upstream_events.insert(upstream_event_id.clone());
                self.upstream_occurred_at = self.upstream_occurred_at.max(*occurred_at);
            }
            LeadEvent::LeadUpdateStale {
                upstream_event_id,
                filled,
                ..
            } => {
                self.fields.extend(filled.clone());
                self.seen_upstream_events.insert(upstream_event_id.clone());
            }
            LeadEvent::LeadReassigned {
                change,
                operation,
                deadline,
                remind_at,
                ..
            } => {
                self.bulk_operations.extend(*operation);
                self.take(change, *deadline, *remind_at);
            }
            LeadEvent::LeadEnqueued { change } => self.take(change, None, None),
            LeadEvent::LeadClaimed { change } => {
                // A claim is an acceptance.
                self.take(change, None, None);
                self.offer = None;
                self.accepted = true;
            }
            LeadEvent::LeadRouted {
                trigger,
                change,
                deadline,
                remind_at,
                ..
            } => {
                self.routed_triggers.insert(*trigger);
                self.take(change, *deadline, *remind_at);
            }
            LeadEvent::LeadOwnerKept { trigger, .. } => {
                self.routed_triggers.insert(*trigger);
            }
            LeadEvent::LeadNotRouted {
                trigger, reason, ..
            } => {
                self.routed_triggers.insert(*trigger);
                self.waiting = (reason.waits() && self.owner.is_none()).then_some(*reason);
            }
            LeadEvent::LeadAccepted { .. } => {
                self.offer = None;
                self.accepted = true;
            }
            LeadEvent::LeadDeclined { by, .. } => {
                self.let_go();
                self.declined.insert(*by);
            }
            LeadEvent::LeadOfferLapsed { from, .. } => {
                self.let_go();
                self.lapsed.insert(*from);
            }
            LeadEvent::LeadHeld {
                trigger, of, owner, ..
            } => {
                self.routed_triggers.insert(*trigger);
                self.held = Some((*of, *owner));
            }
            LeadEvent::LeadHoldResolved {
                resolution, into, ..
            } => {
                self.held = None;
                match resolution {
                    HoldResolution::RouteAnyway => self.duplicate_cleared = true,
                    HoldResolution::Merge => self.merged_into = *into,
                    HoldResolution::Reject => self.rejected = true,
                }
            }
            LeadEvent::LeadOfferReminded { .. } => {
                if let Some(offer) = &mut self.offer {
                    offer.reminded = true;
                }
            }
        }
        // A closed lead waits for nothing.
        if is_closed(&self.fields) {
            self.waiting = None;
        }
        self.waiting_for = match (self.waiting, event) {
            (None, _) => None,
            (Some(_), LeadEvent::LeadNotRouted { decision, .. }) => decision.target,
            (Some(_), _) => self.waiting_for,
        };
    }
}

/// The deadline an offer to `to` carries: only partner users get offers.
fn offered(to: Owner, deadline: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match to {
        Owner::PartnerUser(_) => deadline,
        Owner::Queue(_) | Owner::InternalUser(_) => None,
    }
}

crate::cqrs_aggregate!(Lead, "Lead");
