//! leadroute's schema and log access: the embedded migrations (from `deploy/migrations`,
//! the only schema source) and the names of the tables and channels every reader shares.
//!
//! This crate owns SQL; it holds no domain rules and starts no tasks of its own.

pub mod schema;
