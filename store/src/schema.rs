//! Schema names defined once, and the migrator built from `deploy/migrations`.
//!
//! Nothing here creates tables at run time except through [`migrate`], which applies the
//! versioned migration files.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

/// The event store table (postgres-es's shape plus our position columns).
pub const EVENTS_TABLE: &str = "events";

/// Open leads per owner, kept by the store's commit (see `events::Batch::hold`).
pub const OPEN_LEADS_TABLE: &str = "owner_open_leads";

/// Leads waiting for their target, kept by the store's commit (see `events::Batch::wait`).
pub const WAITING_LEADS_TABLE: &str = "waiting_leads";

/// postgres-es wants a snapshot table name; leadroute never uses snapshots (DESIGN.md), so
/// no such table exists and nothing may ever read or write it.
pub const UNUSED_SNAPSHOTS_TABLE: &str = "snapshots_unused";

/// The LISTEN/NOTIFY channel signalled at every commit that inserts events.
pub const EVENTS_CHANNEL: &str = "leadroute_events";

/// Which class of PostgreSQL errors a database error belongs to, by SQLSTATE class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlClass {
    /// Class 22, data exception: the value itself (a NUL in text, a date out of range).
    Data,
    /// Class 23, integrity constraint violation.
    Integrity,
    /// Class 54, program limit exceeded (an index row too large, a value too big).
    Limit,
    /// Anything else, and errors that are not the database's (connections, pools).
    Other,
}

/// The [`SqlClass`] of `error`: the one place that reads SQLSTATE classes.
pub fn sql_class(error: &sqlx::Error) -> SqlClass {
    let code = match error {
        sqlx::Error::Database(e) => e.code(),
        _ => None,
    };
    match code.as_deref().and_then(|code| code.get(..2)) {
        Some("22") => SqlClass::Data,
        Some("23") => SqlClass::Integrity,
        Some("54") => SqlClass::Limit,
        _ => SqlClass::Other,
    }
}

/// Every migration in `deploy/migrations`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../deploy/migrations");

/// Apply all pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
