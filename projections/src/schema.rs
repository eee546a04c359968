//! Schema names defined once, and the migrator built from `deploy/migrations`.
//!
//! Nothing here creates tables at run time except through [`migrate`], which applies the
//! versioned migration files.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

/// The event store table (postgres-es's shape plus our position columns).
pub const EVENTS_TABLE: &str = "events";

/// postgres-es wants a snapshot table name; leadroute never uses snapshots (DESIGN.md), so
/// no such table exists and nothing may ever read or write it.
pub const UNUSED_SNAPSHOTS_TABLE: &str = "snapshots_unused";

/// The LISTEN/NOTIFY channel signalled at every commit that inserts events.
pub const EVENTS_CHANNEL: &str = "leadroute_events";

/// Every migration in `deploy/migrations`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../deploy/migrations");

/// Apply all pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
