//! The BulkOperation aggregate: one bulk reassignment of many leads to a partner user, a
//! queue or a pool. The selection is frozen into the operation when it starts (the lead ids,
//! in order); the outcome of each lead (moved, skipped, refused with a reason) is recorded
//! in that order, batch by batch, in the same transaction as the batch's lead moves, so
//! the recorded outcomes are always exactly the moves made and a restarted runner resumes
//! after the last recorded lead. Pure: no I/O, no clock.

use crate::decider::{ensure, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, BulkOperationId, LeadId, OrgId, Owner, PartnerAccountId};
use crate::routing::criteria::Criterion;
use crate::routing::rules::Target;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[cfg(test)]
mod tests;

/// Lead ids per `BulkSelectionFrozen` event (keeps each stored event small).
pub const FROZEN_CHUNK: usize = 2_000;
/// Longest reason accepted.
pub const MAX_REASON: usize = 500;

/// How the leads were chosen, as recorded on the operation (an explicit list is recorded
/// by the frozen ids alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// An explicit list of lead ids.
    List,
    /// The leads that matched a filter when the operation started.
    Filter(LeadFilter),
}

/// Which leads a filter selects; every given condition must hold. Unknown keys are refused
/// (a misspelt condition must not widen the selection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadFilter {
    /// Current owner (a partner user, queue or internal user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Owned by a partner user of this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_account_id: Option<PartnerAccountId>,
    /// Inbox status (`unassigned`, `queued`, `to_accept`, `accepted`, `internal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Received at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_after: Option<DateTime<Utc>>,
    /// Received before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_before: Option<DateTime<Utc>>,
    /// Criteria on lead fields, as in assignment rules (all must match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Criterion>,
}

/// What happened to one lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadOutcome {
    /// The lead.
    pub lead_id: LeadId,
    /// Moved, skipped or refused.
    pub result: OutcomeKind,
    /// The new owner (moved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Owner>,
    /// Why it was skipped or refused (`already_owner`, `lead_not_found`, `inactive`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The kinds of per-lead outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// The lead got the new owner.
    Moved,
    /// Nothing to do: the lead already had that owner.
    Skipped,
    /// The move was refused (see the code).
    Refused,
}

/// Start a bulk operation.
#[derive(Debug, Clone, PartialEq)]
pub struct StartBulk {
    /// Its id.
    pub operation_id: BulkOperationId,
    /// Its org.
    pub org_id: OrgId,
    /// How the leads were chosen.
    pub selection: Selection,
    /// The frozen selection, in processing order (duplicates are dropped).
    pub leads: Vec<LeadId>,
    /// Where the leads go.
    pub target: Target,
    /// Send each new owner the assignment email.
    pub notify: bool,
    /// Why (recorded on the operation).
    pub reason: String,
    /// Who starts it.
    pub actor: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// Commands on a bulk operation.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkCommand {
    /// Start it; a re-submission of the same operation is a no-op.
    Start(Box<StartBulk>),
    /// Record the outcomes of the next leads of the selection, in order.
    RecordOutcomes {
        /// One per lead, starting at the first lead without an outcome.
        outcomes: Vec<LeadOutcome>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop it: leads without an outcome stay where they are.
    Cancel {
        /// Who cancels.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a bulk operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BulkEvent {
    /// The operation exists; its lead ids follow in `BulkSelectionFrozen` events.
    BulkOperationStarted {
        /// Its id.
        operation_id: BulkOperationId,
        /// Its org.
        org_id: OrgId,
        /// How the leads were chosen.
        selection: Selection,
        /// Where they go.
        target: Target,
        /// Send the assignment email.
        notify: bool,
        /// Why.
        reason: String,
        /// Number of leads selected.
        total: usize,
        /// Who started it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The next part of the frozen selection.
    BulkSelectionFrozen {
        /// Lead ids, in processing order.
        leads: Vec<LeadId>,
    },
    /// Outcomes of the next leads, in selection order.
    BulkLeadsProcessed {
        /// One per lead.
        outcomes: Vec<LeadOutcome>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every lead has its outcome.
    BulkOperationCompleted {
        /// When.
        at: DateTime<Utc>,
    },
    /// Stopped before every lead had an outcome.
    BulkOperationCancelled {
        /// Who cancelled it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(BulkEvent, version "1.0", {
    BulkOperationStarted => "BulkOperationStarted",
    BulkSelectionFrozen => "BulkSelectionFrozen",
    BulkLeadsProcessed => "BulkLeadsProcessed",
    BulkOperationCompleted => "BulkOperationCompleted",
    BulkOperationCancelled => "BulkOperationCancelled",
});

/// Why a bulk command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// No such operation.
    #[error("the bulk operation does not exist")]
    NotFound,
    /// A reason is required.
    #[error("reason: must be 1 to {MAX_REASON} characters")]
    ReasonRequired,
    /// The same operation id (idempotency key) was submitted with different content.
    #[error("this operation was already started with a different request")]
    KeyReused,
    /// The operation is completed or cancelled.
    #[error("the bulk operation is already {0}")]
    Finished(&'static str),
    /// Outcomes must follow the selection order.
    #[error("outcomes must follow the frozen selection in order")]
    OutOfOrder,
}

impl Refusal for BulkError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            BulkError::NotFound => ("bulk_operation_not_found", NotFound),
            BulkError::ReasonRequired => ("validation_failed", InvalidInput),
            BulkError::KeyReused => ("idempotency_key_reused", Conflict),
            BulkError::Finished(_) => ("bulk_operation_finished", Conflict),
            BulkError::OutOfOrder => ("bulk_outcome_out_of_order", Conflict),
        }
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    /// Not started.
    #[default]
    New,
    /// Leads are being moved.
    Running,
    /// Every lead has its outcome.
    Completed,
    /// Stopped by a person.
    Cancelled,
}

impl BulkStatus {
    /// The stored name (`running`, `completed`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            BulkStatus::New => "new",
            BulkStatus::Running => "running",
            BulkStatus::Completed => "completed",
            BulkStatus::Cancelled => "cancelled",
        }
    }
}

/// State of a bulk operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkOperation {
    /// Set once started.
    pub id: Option<BulkOperationId>,
    /// Its org.
    pub org_id: Option<OrgId>,
    /// Where it stands.
    pub status: BulkStatus,
    /// How the leads were chosen.
    pub selection: Option<Selection>,
    /// Where they go.
    pub target: Option<Target>,
    /// Send the assignment email.
    pub notify: bool,
    /// Why.
    pub reason: String,
    /// Who started it.
    pub actor: Option<Actor>,
    /// Number of leads selected.
    pub total: usize,
    /// The frozen selection.
    pub leads: Vec<LeadId>,
    /// Outcomes, in selection order (a prefix of `leads`).
    pub outcomes: Vec<LeadOutcome>,
    /// Leads moved, skipped and refused so far.
    pub moved: usize,
    /// See `moved`.
    pub skipped: usize,
    /// See `moved`.
    pub refused: usize,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last outcomes were recorded.
    pub progressed_at: Option<DateTime<Utc>>,
    /// When it completed or was cancelled.
    pub finished_at: Option<DateTime<Utc>>,
}

impl BulkOperation {
    /// The leads still without an outcome, in order.
    pub fn pending(&self) -> &[LeadId] {
        &self.leads[self.outcomes.len().min(self.leads.len())..]
    }

    /// Whether leads are still to be moved (started, not finished).
    pub fn is_running(&self) -> bool {
        self.status == BulkStatus::Running
    }

    fn start(&self, start: StartBulk) -> Result<Vec<BulkEvent>, BulkError> {
        let reason = start.reason.trim().to_string();
        ensure(
            !reason.is_empty() && reason.chars().count() <= MAX_REASON,
            BulkError::ReasonRequired,
        )?;
        let mut seen = HashSet::with_capacity(start.leads.len());
        let leads: Vec<LeadId> = start
            .leads
            .into_iter()
            .filter(|lead| seen.insert(*lead))
            .collect();
        if self.id.is_some() {
            let same = self.selection.as_ref() == Some(&start.selection)
                && self.target == Some(start.target)
                && self.notify == start.notify
                && self.reason == reason
                && (matches!(start.selection, Selection::Filter(_)) || self.leads == leads);
            return if same {
                Ok(vec![])
            } else {
                Err(BulkError::KeyReused)
            };
        }
        let mut events = vec![BulkEvent::BulkOperationStarted {
            operation_id: start.operation_id,
            org_id: start.org_id,
            selection: start.selection,
            target: start.target,
            notify: start.notify,
            reason,
            total: leads.len(),
            actor: start.actor,
            at: start.at,
        }];
        events.extend(
            leads
                .chunks(FROZEN_CHUNK)
                .map(|chunk| BulkEvent::BulkSelectionFrozen {
                    leads: chunk.to_vec(),
                }),
        );
        if leads.is_empty() {
            events.push(BulkEvent::BulkOperationCompleted { at: start.at });
        }
        Ok(events)
    }

    fn ensure_running(&self) -> Result<(), BulkError> {
        match self.status {
            BulkStatus::New => Err(BulkError::NotFound),
            BulkStatus::Running => Ok(()),
            finished => Err(BulkError::Finished(finished.as_str())),
        }
    }

    fn record(
        &self,
        outcomes: Vec<LeadOutcome>,
        at: DateTime<Utc>,
    ) -> Result<Vec<BulkEvent>, BulkError> {
        self.ensure_running()?;
        let pending = self.pending();
        ensure(
            outcomes.len() <= pending.len()
                && outcomes
                    .iter()
                    .zip(pending)
                    .all(|(outcome, lead)| outcome.lead_id == *lead),
            BulkError::OutOfOrder,
        )?;
        if outcomes.is_empty() {
            return Ok(vec![]);
        }
        let done = outcomes.len() == pending.len();
        let mut events = vec![BulkEvent::BulkLeadsProcessed { outcomes, at }];
        if done {
            events.push(BulkEvent::BulkOperationCompleted { at });
        }
        Ok(events)
    }
}

impl Decider for BulkOperation {
    type Command = BulkCommand;
    type Event = BulkEvent;
    type Error = BulkError;

    fn decide(&self, command: BulkCommand) -> Result<Vec<BulkEvent>, BulkError> {
        match command {
            BulkCommand::Start(start) => self.start(*start),
            BulkCommand::RecordOutcomes { outcomes, at } => self.record(outcomes, at),
            BulkCommand::Cancel { actor, at } => {
                self.ensure_running()?;
                Ok(vec![BulkEvent::BulkOperationCancelled { actor, at }])
            }
        }
    }

    fn evolve(&mut self, event: &BulkEvent) {
        match event {
            BulkEvent::BulkOperationStarted {
                operation_id,
                org_id,
                selection,
                target,
                notify,
                reason,
                total,
                actor,
                at,
            } => {
                self.id = Some(*operation_id);
                self.org_id = Some(*org_id);
                self.status = BulkStatus::Running;
                self.selection = Some(selection.clone());
                self.target = Some(*target);
                self.notify = *notify;
                self.reason = reason.clone();
                self.total = *total;
                self.actor = Some(actor.clone());
                self.started_at = Some(*at);
                self.leads.reserve(*total);
            }
            BulkEvent::BulkSelectionFrozen { leads } => self.leads.extend_from_slice(leads),
            BulkEvent::BulkLeadsProcessed { outcomes, at } => {
                for outcome in outcomes {
                    match outcome.result {
                        OutcomeKind::Moved => self.moved += 1,
                        OutcomeKind::Skipped => self.skipped += 1,
                        OutcomeKind::Refused => self.refused += 1,
                    }
                }
                self.outcomes.extend_from_slice(outcomes);
                self.progressed_at = Some(*at);
            }
            BulkEvent::BulkOperationCompleted { at } => {
                self.status = BulkStatus::Completed;
                self.finished_at = Some(*at);
            }
            BulkEvent::BulkOperationCancelled { at, .. } => {
                self.status = BulkStatus::Cancelled;
                self.finished_at = Some(*at);
            }
        }
    }
}

crate::cqrs_aggregate!(BulkOperation, "BulkOperation");
