//! The Queue aggregate: a partner queue and its members (single partner users or whole
//! partner accounts). Pure: no I/O, no clock.

use crate::decider::{ensure, required_name, Decider, Refusal, RefusalKind};
use crate::ids::{Actor, OrgId, PartnerAccountId, PartnerUserId, QueueId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[cfg(test)]
mod tests;

/// A member of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum QueueMember {
    /// One partner user.
    PartnerUser(PartnerUserId),
    /// Every partner user of a partner account.
    PartnerAccount(PartnerAccountId),
}

/// Commands on a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueCommand {
    /// Create the queue.
    CreateQueue {
        /// The new queue's id.
        queue_id: QueueId,
        /// Its org.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Who creates it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a member.
    AddQueueMember {
        /// The member.
        member: QueueMember,
        /// Who adds it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a member.
    RemoveQueueMember {
        /// The member.
        member: QueueMember,
        /// Who removes it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Events of a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueueEvent {
    /// The queue exists.
    QueueCreated {
        /// Its id.
        queue_id: QueueId,
        /// Its org.
        org_id: OrgId,
        /// Display name.
        name: String,
        /// Who created it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member joined.
    QueueMemberAdded {
        /// The member.
        member: QueueMember,
        /// Who added it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A member left.
    QueueMemberRemoved {
        /// The member.
        member: QueueMember,
        /// Who removed it.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
    },
}

crate::domain_event!(QueueEvent, version "1.0", {
    QueueCreated => "QueueCreated",
    QueueMemberAdded => "QueueMemberAdded",
    QueueMemberRemoved => "QueueMemberRemoved",
});

/// Why a queue command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue already exists.
    #[error("the queue already exists")]
    QueueAlreadyExists,
    /// The queue does not exist.
    #[error("the queue does not exist")]
    QueueNotFound,
    /// A name is required.
    #[error("the queue name must not be empty")]
    NameRequired,
    /// The name breaks the limits of a name (`limits::line`).
    #[error("{0}")]
    InvalidName(crate::limits::TextFault),
    /// Already a member.
    #[error("already a member of this queue")]
    AlreadyMember,
    /// Not a member.
    #[error("not a member of this queue")]
    NotAMember,
}

impl Refusal for QueueError {
    fn describe(&self) -> (&'static str, RefusalKind) {
        use RefusalKind::*;
        match self {
            QueueError::QueueAlreadyExists => ("queue_already_exists", Conflict),
            QueueError::QueueNotFound => ("queue_not_found", NotFound),
            QueueError::NameRequired => ("name_required", InvalidInput),
            QueueError::InvalidName(_) => ("invalid_name", InvalidInput),
            QueueError::AlreadyMember => ("already_member", Conflict),
            QueueError::NotAMember => ("not_a_member", Conflict),
        }
    }
}

/// State of a queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// Set once created.
    pub id: Option<QueueId>,
    /// Its org.
    pub org_id: Option<OrgId>,
    /// Display name.
    pub name: String,
    /// Current members.
    pub members: BTreeSet<QueueMember>,
}

impl Queue {
    /// Whether a partner user of the given account is a member, directly or through the account.
    pub fn has_member(&self, user: PartnerUserId, account: PartnerAccountId) -> bool {
        self.members.contains(&QueueMember::PartnerUser(user))
            || self.members.contains(&QueueMember::PartnerAccount(account))
    }
}

impl Decider for Queue {
    type Command = QueueCommand;
    type Event = QueueEvent;
    type Error = QueueError;

    fn decide(&self, command: QueueCommand) -> Result<Vec<QueueEvent>, QueueError> {
        ensure(
            self.id.is_some() || matches!(command, QueueCommand::CreateQueue { .. }),
            QueueError::QueueNotFound,
        )?;
        match command {
            QueueCommand::CreateQueue {
                queue_id,
                org_id,
                name,
                actor,
                at,
            } => {
                ensure(self.id.is_none(), QueueError::QueueAlreadyExists)?;
                let name = required_name(&name, QueueError::NameRequired, QueueError::InvalidName)?;
                Ok(vec![QueueEvent::QueueCreated {
                    queue_id,
                    org_id,
                    name,
                    actor,
                    at,
                }])
            }
            QueueCommand::AddQueueMember { member, actor, at } => {
                ensure(!self.members.contains(&member), QueueError::AlreadyMember)?;
                Ok(vec![QueueEvent::QueueMemberAdded { member, actor, at }])
            }
            QueueCommand::RemoveQueueMember { member, actor, at } => {
                ensure(self.members.contains(&member), QueueError::NotAMember)?;
                Ok(vec![QueueEvent::QueueMemberRemoved { member, actor, at }])
            }
        }
    }

    fn evolve(&mut self, event: &QueueEvent) {
        match event {
            QueueEvent::QueueCreated {
                queue_id,
                org_id,
                name,
                ..
            } => {
                self.id = Some(*queue_id);
                self.org_id = Some(*org_id);
                self.name = name.clone();
            }
            QueueEvent::QueueMemberAdded { member, .. } => {
                self.members.insert(*member);
            }
            QueueEvent::QueueMemberRemoved { member, .. } => {
                self.members.remove(member);
            }
        }
    }
}

crate::cqrs_aggregate!(Queue, "Queue");
