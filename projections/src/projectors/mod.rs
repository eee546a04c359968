//! The projectors: each owns its read-model tables and applies batches of log events to
//! them. No projector reads another's tables, so each can be rebuilt on its own.

mod directory;
mod duplicates;
mod history;
pub mod leads;
pub mod offers;
mod shared;
mod timers;
mod workflow;

pub use directory::DirectoryProjector;
pub use history::HistoryProjector;
pub use leads::LeadsProjector;
pub use shared::{
    owner_columns, owner_from_columns, DIRECTORY, LEADS, OWNERSHIP_HISTORY, WORKFLOW,
};
pub use workflow::WorkflowProjector;

use crate::projector::{ProjectionError, Projector};

/// Every projector, in the order they are run and verified.
pub fn all() -> Vec<&'static dyn Projector> {
    vec![
        &DirectoryProjector,
        &LeadsProjector,
        &HistoryProjector,
        &WorkflowProjector,
    ]
}

/// The projector called `name`.
pub fn by_name(name: &str) -> Result<&'static dyn Projector, ProjectionError> {
    all().into_iter().find(|p| p.name() == name).ok_or_else(|| {
        let known: Vec<_> = all().iter().map(|p| p.name()).collect();
        ProjectionError::UnknownProjection(name.to_string(), known.join(", "))
    })
}
