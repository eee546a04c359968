//! Events of the Lead aggregate and the owner-change record every owner event carries.

use super::LeadFields;
use crate::ids::{Actor, BulkOperationId, LeadId, OrgId, Owner, PartnerUserId, UpstreamRef};
use crate::routing::{Decision, NotRouted};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an owner changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerChangeCause {
    /// A person changed the owner by hand (`ReassignLead`).
    Manual,
    /// The lead was put into a queue (`EnqueueLead`).
    Enqueue,
    /// A queue member claimed the lead (`ClaimLead`).
    Claim,
    /// By the assignment rules (or the default owner), on arrival or a watched update.
    Rule,
    /// By the assignment rules, on an explicit re-run.
    Rerun,
    /// By a bulk reassignment (the event names the operation).
    Bulk,
    /// The owner the upstream CRM had already given the lead when it arrived.
    Import,
    /// The partner user it was offered to declined it (it went to nobody).
    Declined,
    /// The offer's acceptance deadline passed: the lead was recalled (to nobody).
    Lapsed,
}

impl OwnerChangeCause {
    /// The stored name of the cause (`manual`, `enqueue`, `claim`, `rule`, `rerun`, `bulk`,
    /// `import`, `declined`, `lapsed`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OwnerChangeCause::Manual => "manual",
            OwnerChangeCause::Enqueue => "enqueue",
            OwnerChangeCause::Claim => "claim",
            OwnerChangeCause::Rule => "rule",
            OwnerChangeCause::Rerun => "rerun",
            OwnerChangeCause::Bulk => "bulk",
            OwnerChangeCause::Import => "import",
            OwnerChangeCause::Declined => "declined",
            OwnerChangeCause::Lapsed => "lapsed",
        }
    }
}

/// How a lead held as a possible duplicate was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldResolution {
    /// Route it by the rules after all.
    RouteAnyway,
    /// It is the lead it matched: its upstream events update that lead from now on.
    Merge,
    /// Drop it: it is never routed.
    Reject,
}

/// One owner change: previous owner, new owner, actor, cause and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerChange {
    /// Owner before the change (`None` for a lead that had none).
    pub from: Option<Owner>,
    /// Owner after the change.
    pub to: Owner,
    /// Who made the change.
    pub actor: Actor,
    /// Why.
    pub cause: OwnerChangeCause,
    /// When.
    pub at: DateTime<Utc>,
}

/// One line of a lead's ownership history: an owner change, or the lead let go by a
/// decline or a lapse (`to` is `None`: nobody owns it until it is routed again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    /// Owner before.
    pub from: Option<Owner>,
    /// Owner after; `None` when the lead was let go.
    pub to: Option<Owner>,
    /// Who made the change.
    pub actor: Actor,
    /// Why.
    pub cause: OwnerChangeCause,
    /// When.
    pub at: DateTime<Utc>,
}

/// Events of a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LeadEvent {
    /// First event of a lead: received from upstream.
    LeadReceived {
        /// Its id.
        lead_id: LeadId,
        /// Its org.
        org_id: OrgId,
        /// Upstream system and lead id.
        upstream: UpstreamRef,
        /// The upstream event that created it.
        upstream_event_id: String,
        /// Field values.
        fields: LeadFields,
        /// False when upstream opted out of automatic routing.
        route: bool,
        /// When it happened upstream (events written before 1.2 have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        occurred_at: Option<DateTime<Utc>>,
        /// Who delivered it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Upstream sent an update; `changed` holds only the fields whose value changed.
    LeadUpdated {
        /// The upstream event.
        upstream_event_id: String,
        /// Changed fields with their new values.
        changed: LeadFields,
        /// False when upstream opted this update out of automatic routing (events written
        /// before the field existed read as true).
        #[serde(default = "routable")]
        route: bool,
        /// When it happened upstream (events written before 1.2 have none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        occurred_at: Option<DateTime<Utc>>,
        /// Who delivered it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Upstream sent an event older (by `occurred_at`) than the newest one applied, e.g. a
    /// redelivery after a crash: it overwrites nothing and routes nothing. Only fields the
    /// lead has no value for yet are taken from it (`filled`).
    LeadUpdateStale {
        /// The upstream event.
        upstream_event_id: String,
        /// When it happened upstream.
        occurred_at: DateTime<Utc>,
        /// The newest `occurred_at` applied before it.
        newest_applied: DateTime<Utc>,
        /// Fields the lead did not have, taken from the stale event.
        filled: LeadFields,
        /// Who delivered it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Manual owner change.
    LeadReassigned {
        /// The change.
        change: OwnerChange,
        /// Whether the new owner is to be notified by email.
        notify: bool,
        /// The bulk operation that moved it (cause `bulk`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<BulkOperationId>,
        /// When the offer lapses unless accepted (offers to partner users with a deadline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
        /// When the offeree is reminded (offers with a deadline and a reminder).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remind_at: Option<DateTime<Utc>>,
    },
    /// The lead went into a queue.
    LeadEnqueued {
        /// The change (to the queue).
        change: OwnerChange,
    },
    /// A queue member claimed the lead.
    LeadClaimed {
        /// The change (from the queue to the member).
        change: OwnerChange,
    },
    /// The assignment rules gave the lead a new owner (a partner user or a queue).
    LeadRouted {
        /// What triggered the routing (an event or re-run id).
        trigger: Uuid,
        /// The change.
        change: OwnerChange,
        /// Send the assignment email.
        notify: bool,
        /// How it was decided.
        #[serde(with = "crate::routing::stored_decision")]
        decision: Decision,
        /// When the offer lapses unless accepted (offers to partner users with a deadline).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
        /// When the offeree is reminded (offers with a deadline and a reminder).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remind_at: Option<DateTime<Utc>>,
    },
    /// The assignment rules kept the lead with its owner (`kept_existing_owner`).
    LeadOwnerKept {
        /// What triggered the routing.
        trigger: Uuid,
        /// How it was decided.
        #[serde(with = "crate::routing::stored_decision")]
        decision: Decision,
        /// When.
        at: DateTime<Utc>,
    },
    /// The assignment rules could not route the lead; it stays where it is.
    LeadNotRouted {
        /// What triggered the routing.
        trigger: Uuid,
        /// Why.
        reason: NotRouted,
        /// How it was decided.
        #[serde(with = "crate::routing::stored_decision")]
        decision: Decision,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user the lead was offered to accepted it.
    LeadAccepted {
        /// The partner user (its owner).
        by: PartnerUserId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The partner user the lead was offered to declined it: nobody owns it now, and it is
    /// never offered to them again.
    LeadDeclined {
        /// The partner user (its owner until now).
        by: PartnerUserId,
        /// The reason code, from the org's list.
        reason: String,
        /// Free text the partner user added.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A new lead matched an open lead of the org that a partner owns: it is held, not
    /// routed, until resolved (reason `possible_duplicate`).
    LeadHeld {
        /// What triggered the routing.
        trigger: Uuid,
        /// The open lead it matches.
        of: LeadId,
        /// That lead's owner.
        owner: Owner,
        /// How it was decided.
        #[serde(with = "crate::routing::stored_decision")]
        decision: Decision,
        /// When.
        at: DateTime<Utc>,
    },
    /// An admin or channel manager resolved the hold: route it anyway, merge it into the
    /// lead it matched (its upstream events then update that lead), or reject it.
    LeadHoldResolved {
        /// How.
        resolution: HoldResolution,
        /// The lead it was merged into (`merge`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<LeadId>,
        /// Who.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The reminder of a pending offer went out (the mailer emails the offeree).
    LeadOfferReminded {
        /// The partner user the lead is offered to.
        to: PartnerUserId,
        /// The offer's deadline.
        deadline: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The offer's acceptance deadline passed unaccepted: the lead was recalled from the
    /// partner user, nobody owns it now, and it is never offered to them again.
    LeadOfferLapsed {
        /// The partner user it was offered to.
        from: PartnerUserId,
        /// The deadline that passed.
        deadline: DateTime<Utc>,
        /// Who recalled it (the scheduler).
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

fn routable() -> bool {
    true
}

// 1.1: a pool decision's record is stored in its compact form (see `routing::Decision`);
// 1.0 records, stored whole, still decode.
// 1.2: `LeadReceived` and `LeadUpdated` carry the upstream `occurred_at`; `LeadUpdateStale`
// records an older upstream event that changed nothing. 1.1 events decode without it.
// 1.3: offers: `LeadAccepted`, `LeadDeclined`, `LeadOfferReminded`, `LeadOfferLapsed`, the
// possible-duplicate hold (`LeadHeld`, `LeadHoldResolved`), and
// the `deadline` and `remind_at` of an offer on `LeadRouted` and `LeadReassigned`. 1.2
// events decode without them.
crate::domain_event!(LeadEvent, version "1.3", {
    LeadReceived => "LeadReceived",
    LeadUpdated => "LeadUpdated",
    LeadUpdateStale => "LeadUpdateStale",
    LeadReassigned => "LeadReassigned",
    LeadEnqueued => "LeadEnqueued",
    LeadClaimed => "LeadClaimed",
    LeadRouted => "LeadRouted",
    LeadOwnerKept => "LeadOwnerKept",
    LeadNotRouted => "LeadNotRouted",
    LeadAccepted => "LeadAccepted",
    LeadDeclined => "LeadDeclined",
    LeadOfferLapsed => "LeadOfferLapsed",
    LeadOfferReminded => "LeadOfferReminded",
    LeadHeld => "LeadHeld",
    LeadHoldResolved => "LeadHoldResolved",
});

impl LeadEvent {
    /// The bulk operation that made this owner change, if one did.
    pub fn bulk_operation(&self) -> Option<BulkOperationId> {
        match self {
            LeadEvent::LeadReassigned { operation, .. } => *operation,
            _ => None,
        }
    }

    /// The owner change this event records, if it is one.
    pub fn owner_change(&self) -> Option<&OwnerChange> {
        match self {
            LeadEvent::LeadReassigned { change, .. }
            | LeadEvent::LeadEnqueued { change }
            | LeadEvent::LeadClaimed { change }
            | LeadEvent::LeadRouted { change, .. } => Some(change),
            LeadEvent::LeadReceived { .. }
            | LeadEvent::LeadUpdated { .. }
            | LeadEvent::LeadUpdateStale { .. }
            | LeadEvent::LeadOwnerKept { .. }
            | LeadEvent::LeadNotRouted { .. }
            | LeadEvent::LeadAccepted { .. }
            | LeadEvent::LeadDeclined { .. }
            | LeadEvent::LeadOfferLapsed { .. }
            | LeadEvent::LeadOfferReminded { .. }
            | LeadEvent::LeadHeld { .. }
            | LeadEvent::LeadHoldResolved { .. } => None,
        }
    }

    /// The line this event adds to the lead's ownership history, if it adds one: an owner
    /// change, or the lead let go by a decline or a lapse.
    pub fn history_line(&self) -> Option<HistoryLine> {
        let released = |from: &PartnerUserId, actor: Actor, cause, at: &DateTime<Utc>| {
            Some(HistoryLine {
                from: Some(Owner::PartnerUser(*from)),
                to: None,
                actor,
                cause,
                at: *at,
            })
        };
        match self {
            LeadEvent::LeadDeclined { by, at, .. } => {
                released(by, Actor::PartnerUser(*by), OwnerChangeCause::Declined, at)
            }
            LeadEvent::LeadOfferLapsed {
                from, actor, at, ..
            } => released(from, actor.clone(), OwnerChangeCause::Lapsed, at),
            other => other.owner_change().map(|change| HistoryLine {
                from: change.from,
                to: Some(change.to),
                actor: change.actor.clone(),
                cause: change.cause.clone(),
                at: change.at,
            }),
        }
    }
}
