//! leadroute's read side: the projector runtime over the store's commit-safe log reader
//! (which quarantines an event a reader cannot handle instead of stopping: `quarantine`),
//! the projectors and the read-model queries, rebuild and verify.
//!
//! This crate owns the read models' SQL and holds no domain rules; it never touches the
//! events table except through `leadroute-store`.
//!
//! # Layout
//! - `projector`: the projector trait, batch errors, checkpoint locks.
//! - `runtime`: the projector trait, batches with checkpoints, leadership, careful retries.
//! - `quarantine`: events a reader set aside, and their resolution.
//! - `projectors`: `directory`, `leads`, `ownership_history`.
//! - `queries`: read-model queries, scoped to an org.
//! - `rebuild`: rebuild into a scratch schema and swap; `audit verify`.
//! - `status`: checkpoints, lag, whether a position was written.

pub mod projector;
pub mod projectors;
pub mod quarantine;
pub mod queries;
pub mod rebuild;
pub mod runtime;
pub mod status;
