//! What a projector is (`Projector`), why a batch fails (`ProjectionError`), and the steps
//! every batch shares: taking its checkpoint lock, pointing a transaction at a scratch
//! schema, handing events to the projector. The runtime, the quarantine's retries and
//! rebuilds all build on these.

use async_trait::async_trait;
use leadroute_store::log::{self, AnyEvent, Checkpoint, LogError, LogEvent};
use leadroute_store::schema::{sql_class, SqlClass};
use sqlx::PgConnection;
use std::time::Duration;

/// The default wait of a woken projector before it reads (see [`Projector::settle`]).
pub const SETTLE: Duration = Duration::from_millis(10);

/// Why a projector batch failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the read model failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A copy being rebuilt was written by someone else.
    #[error("the projection copy in schema {0} was changed by another writer")]
    CopyNotPrivate(String),
    /// The log-reading task of a rebuild failed.
    #[error("the log reader task failed: {0}")]
    Reader(String),
    /// A projector's sink outside PostgreSQL (e.g. NATS) failed.
    #[error("sink failed: {0}")]
    Sink(String),
    /// This reader can never handle the event (undecodable, too large for its sink): no
    /// retry helps, so the runtime quarantines it.
    #[error("{0}")]
    Poison(String),
    /// No projector has that name.
    #[error("no projection named {0:?} (known: {1})")]
    UnknownProjection(String, String),
}

impl ProjectionError {
    /// Whether the failure lies in the events themselves, so that applying them again can
    /// never succeed: PostgreSQL's data exceptions (SQLSTATE class 22), integrity
    /// violations (23) and program limits (54, e.g. an index row too large), and
    /// [`ProjectionError::Poison`]. Everything else (connections, NATS) is transient.
    pub fn is_permanent(&self) -> bool {
        let database = match self {
            ProjectionError::Poison(_) => return true,
            ProjectionError::Database(e) | ProjectionError::Log(LogError::Database(e)) => e,
            _ => return false,
        };
        sql_class(database) != SqlClass::Other
    }
}

/// A read model built from the log.
#[async_trait]
pub trait Projector: Send + Sync {
    /// Stable name: the checkpoint key and the name on the command line.
    fn name(&self) -> &'static str;

    /// The tables it alone writes (rebuilt and compared by name).
    fn tables(&self) -> &'static [&'static str];

    /// Which payloads it reads, and whether decoded or raw (by default: all, decoded).
    fn reading(&self) -> log::Reading {
        log::Reading::ALL
    }

    /// How long a woken projector waits before it reads, so that one batch takes in the
    /// commits that arrive meanwhile: fewer, larger transactions when events come in a
    /// steady stream, at the price of this much delay (by default [`SETTLE`]; the partner
    /// inbox's projector reads at once).
    fn settle(&self) -> Duration {
        SETTLE
    }

    /// Apply `events` (in commit order) inside the caller's transaction. Tables are named
    /// unqualified: the caller's search_path decides which copy is written.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[LogEvent],
    ) -> Result<(), ProjectionError>;
}

/// Point the rest of the transaction's unqualified table names at `schema` (a scratch copy),
/// falling back to `public` for the events table.
pub(crate) async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Take the checkpoint lock of `name` for the rest of the transaction and read the
/// checkpoint (created at zero when missing).
///
/// The lock is a transaction-level advisory lock keyed by schema and name, not a row lock:
/// `SELECT ... FOR UPDATE` would give the batch a transaction id for its whole duration,
/// and a running transaction id holds back `pg_snapshot_xmin` for every log reader (a
/// publisher waiting on NATS acks would stall them all). This way the batch gets an id only
/// when it writes, just before it commits.
pub(crate) async fn lock_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('leadroute.checkpoint.' || current_schema() || '.' || $1, 0))")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let select =
        "SELECT transaction_id::text, global_position FROM projection_checkpoints WHERE name = $1";
    let mut row: Option<(String, i64)> = sqlx::query_as(select)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    if row.is_none() {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(&mut *conn)
        .await?;
        row = Some(
            sqlx::query_as(select)
                .bind(name)
                .fetch_one(&mut *conn)
                .await?,
        );
    }
    let (tx, pos) = row.unwrap_or_default();
    Ok(Checkpoint {
        transaction_id: log::parse_xid(&tx)?,
        global_position: pos,
    })
}

/// Hand `events` to the projector, unless one of them does not decode (then none is
/// applied and the error is permanent).
pub(crate) async fn apply_checked(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[LogEvent],
) -> Result<(), ProjectionError> {
    if let Some((event, reason)) = events.iter().find_map(|e| match &e.event {
        AnyEvent::Undecodable(reason) => Some((e, reason)),
        _ => None,
    }) {
        return Err(ProjectionError::Poison(format!(
            "event {} ({}/{}) does not decode: {reason}",
            event.event_id, event.aggregate_type, event.event_type
        )));
    }
    projector.apply(conn, events).await
}
