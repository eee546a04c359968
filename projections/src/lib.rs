//! leadroute's schema and read side: the embedded migrations (from `deploy/migrations`, the
//! only schema source), the commit-safe event-log reader, the projector runtime (which
//! quarantines an event a reader cannot handle instead of stopping: `quarantine`), the
//! projectors and the read-model queries.
//!
//! This crate owns SQL and holds no domain rules; it never writes the events table.

pub mod log;
pub mod projectors;
pub mod quarantine;
pub mod queries;
pub mod rebuild;
pub mod runtime;
pub mod schema;
pub mod status;
