//! leadroute's schema and read side: the embedded migrations (from `deploy/migrations`, the
//! only schema source), the commit-safe event-log reader, the projector runtime (which
//! quarantines an event a reader cannot handle instead of stopping: `quarantine`), the
//! projectors and the read-model queries.
//!
//! This crate owns SQL and holds no domain rules; it never writes the events table.
//!
//! # Layout
//! - `schema`: table and channel names, the embedded migrator.
//! - `log`: the commit-safe log reader and decoded events.
//! - `runtime`: the projector trait, batches with checkpoints, leadership, careful retries.
//! - `quarantine`: events a reader set aside, and their resolution.
//! - `projectors`: `directory`, `leads`, `ownership_history`.
//! - `queries`: read-model queries, scoped to an org.
//! - `rebuild`: rebuild into a scratch schema and swap; `audit verify`.
//! - `status`: checkpoints, lag, whether a position was written.

pub mod log;
pub mod projectors;
pub mod quarantine;
pub mod queries;
pub mod rebuild;
pub mod runtime;
pub mod schema;
pub mod status;
