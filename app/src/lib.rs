//! leadroute's application layer: executes domain commands against the event store
//! (`leadroute-store`) after looking up the facts each command needs, routes leads through
//! the routing engine, and holds what every edge shares: credentials, strict parsing of
//! outside input, the upstream lead event, and mail templates. Optimistic-concurrency
//! conflicts are retried a bounded number of times.
//!
//! Every method is scoped to one org: an aggregate of another org is reported as not found.
//! Nothing here speaks HTTP or NATS.
//!
//! # Layout
//! - crate root: `Commands`, `CommandMeta`, `Committed`, retries; `AppError` and `codes`.
//! - `batch`: many commands in one transaction; `lookups`: facts and org scoping;
//!   `facts`: routing facts; `org`, `partners`, `queues`, `leads`, `rule_sets`,
//!   `templates`, `bulk`: the commands by area.
//! - `router`: the router (one lead, routing at intake, dry run) over `engine::resolve`.
//! - `bulk_runner`: runs bulk reassignments, one runner per operation across processes.
//! - `access`: API keys, partner passwords and sessions, sign-in throttling.
//! - `input`: strict JSON for every edge; `lead_event`: the upstream lead event and its
//!   dead-letter reasons.
//! - `mail`: rendering notification templates.

pub mod access;
mod bulk;
pub mod bulk_runner;
mod commands;
mod error;
mod facts;
mod in_org;
pub mod input;
pub mod lead_event;
mod leads;
mod lookups;
pub mod mail;
mod org;
mod partners;
mod queues;
pub mod router;
mod rule_sets;
mod templates;

pub use bulk::{BulkRequest, BulkScope, BulkSelection, BATCH as BULK_BATCH};
pub use commands::{CommandMeta, Commands, Committed, MAX_ATTEMPTS};
pub use error::{codes, AppError};
pub use in_org::InOrg;
pub use leads::NewLead;
pub use partners::{NewContact, NewPartnerAccount};
