//! leadroute's event store: the one owner of the `events` table. It holds the schema (the
//! migrations embedded from `deploy/migrations`, the only schema source), the commit-safe
//! log reader, loading aggregates (one, many, from this process's bounded cache) and the one
//! commit path (a batch of events in one INSERT that answers its log position), and named
//! queries for every other reader of the table. Nothing outside this crate writes SQL
//! against `events`.
//!
//! No domain rules live here: commands are decided by the caller (`leadroute-app`) and
//! only their events arrive.
//!
//! # Layout
//! - `schema`: table and channel names, the embedded migrator, SQLSTATE classes.
//! - `db`: connection pools with leadroute's session settings, creating the database,
//!   applying migrations, redacting URLs for logs.
//! - `log`: log positions, the commit-safe log reader and decoded events.
//! - `events`: `EventStore` (load, load many, cached loads, commit) and `Batch`.
//! - `cache`: the typed, bounded cache of aggregate states.
//! - `named`: named queries (last sequence, positions, lag, decided triggers, unfinished
//!   bulk operations, a lead's routing decisions).

mod cache;
pub mod db;
pub mod events;
pub mod log;
pub mod named;
pub mod schema;

pub use cache::PER_TYPE as CACHED_PER_TYPE;
pub use events::{Batch, EventStore, Loaded, StoreError, Waiting};
pub use log::Checkpoint;
