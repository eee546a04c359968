//! What the projectors share: their names, and how an owner is stored in read models.

use leadroute_domain::ids::Owner;

/// Name of the partner-directory projection (accounts, users, queues).
pub const DIRECTORY: &str = "directory";
/// Name of the leads projection (inbox, queue view, channel-manager view).
pub const LEADS: &str = "leads";
/// Name of the partner-workflow projection (offer timers, offers and how they ended,
/// duplicate keys).
pub const WORKFLOW: &str = "workflow";
/// Name of the ownership-history projection.
pub const OWNERSHIP_HISTORY: &str = "ownership_history";

/// An owner as stored in read models and generated events: kind and id.
pub fn owner_columns(owner: &Owner) -> (&'static str, uuid::Uuid) {
    match owner {
        Owner::PartnerUser(id) => ("partner_user", id.0),
        Owner::Queue(id) => ("queue", id.0),
        Owner::InternalUser(id) => ("internal_user", id.0),
    }
}

/// The owner stored as `kind` and `id` (the inverse of [`owner_columns`]); `None` for a
/// kind that names no owner.
pub fn owner_from_columns(kind: &str, id: uuid::Uuid) -> Option<Owner> {
    use leadroute_domain::ids::{InternalUserId, PartnerUserId, QueueId};
    match kind {
        "partner_user" => Some(Owner::PartnerUser(PartnerUserId(id))),
        "queue" => Some(Owner::Queue(QueueId(id))),
        "internal_user" => Some(Owner::InternalUser(InternalUserId(id))),
        _ => None,
    }
}
