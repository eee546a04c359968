//! The projectors: each owns its read-model tables and applies batches of log events to
//! them. No projector reads another's tables, so each can be rebuilt on its own.

mod directory;
mod history;
pub mod leads;

pub use directory::DirectoryProjector;
pub use history::HistoryProjector;
pub use leads::LeadsProjector;

use crate::runtime::{ProjectionError, Projector};
use leadroute_domain::ids::Owner;

/// Name of the partner-directory projection (accounts, users, queues).
pub const DIRECTORY: &str = "directory";
/// Name of the leads projection (inbox, queue view, channel-manager view).
pub const LEADS: &str = "leads";
/// Name of the ownership-history projection.
pub const OWNERSHIP_HISTORY: &str = "ownership_history";

/// Every projector, in the order they are run and verified.
pub fn all() -> Vec<&'static dyn Projector> {
    vec![&DirectoryProjector, &LeadsProjector, &HistoryProjector]
}

/// The projector called `name`.
pub fn by_name(name: &str) -> Result<&'static dyn Projector, ProjectionError> {
    all().into_iter().find(|p| p.name() == name).ok_or_else(|| {
        let known: Vec<_> = all().iter().map(|p| p.name()).collect();
        ProjectionError::UnknownProjection(name.to_string(), known.join(", "))
    })
}

/// An owner as stored in read models and generated events: kind and id.
pub fn owner_columns(owner: &Owner) -> (&'static str, uuid::Uuid) {
    match owner {
        Owner::PartnerUser(id) => ("partner_user", id.0),
        Owner::Queue(id) => ("queue", id.0),
        Owner::InternalUser(id) => ("internal_user", id.0),
    }
}
