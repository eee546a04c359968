//! The projector runtime: each batch takes its projector's checkpoint lock, reads the next
//! events in commit-safe order, applies them and moves the checkpoint in the same
//! transaction, so every event takes effect exactly once even across crashes.
//!
//! One instance per projector name is active: it holds a session advisory lock (no open
//! transaction, so it never holds back the log readers' xmin horizon); standbys retry the
//! lock and take over when the active one's connection ends. The checkpoint lock taken by
//! every batch keeps two instances from ever applying the same events, even if both
//! believed they were active. Wakes on NOTIFY, polls as a fallback.
//!
//! An event a projector can never handle (undecodable, refused by its tables or its sink) is
//! quarantined for that projector after its batch failed and was retried event by event;
//! the projector goes on with the next events (see [`crate::quarantine`]).

use crate::projector::{apply_checked, lock_checkpoint, use_schema};
pub use crate::projector::{ProjectionError, Projector, SETTLE};
use crate::quarantine;
use leadroute_store::log::{self, LogEvent, Upto};
use leadroute_store::schema::EVENTS_CHANNEL;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use std::future::Future;
use std::time::Duration;

/// Events read and applied per transaction.
pub const BATCH_SIZE: i64 = 5000;

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In one go: a failure that lies in the events aborts the caller's transaction, and
    /// the caller applies the batch again `Careful`ly in a new one (no savepoint costs on
    /// the common path).
    Fast,
    /// Under savepoints, quarantining the events that fail for good (for callers whose
    /// transaction must survive, and for the retry of a failed `Fast` batch).
    Careful,
}

/// Apply the next batch inside the caller's transaction (which must have locked nothing
/// else); returns how many events it applied (0 when caught up).
pub(crate) async fn step_in(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    upto: Upto,
    limit: i64,
    mode: Mode,
) -> Result<usize, ProjectionError> {
    let checkpoint = lock_checkpoint(conn, projector.name()).await?;
    let events = log::read_batch_of(conn, checkpoint, upto, limit, projector.reading()).await?;
    apply_locked(conn, projector, &events, mode).await?;
    Ok(events.len())
}

/// Apply `events` (read after the locked checkpoint) and move the checkpoint past them.
///
/// A batch that fails for a reason that lies in its events ([`ProjectionError::is_permanent`])
/// is applied again ([`Mode::Careful`]) event by event, each under its own savepoint: an
/// event that fails alone is quarantined for this reader ([`crate::quarantine`]) and the
/// others apply, so one bad event never stops the reader. Quarantined events count as
/// handled in `events_applied`.
async fn apply_locked(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[LogEvent],
    mode: Mode,
) -> Result<(), ProjectionError> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    match mode {
        Mode::Fast => apply_checked(conn, projector, events).await?,
        Mode::Careful => {
            savepoint(conn, "SAVEPOINT lr_batch").await?;
            match apply_checked(conn, projector, events).await {
                Ok(()) => savepoint(conn, "RELEASE SAVEPOINT lr_batch").await?,
                Err(e) if e.is_permanent() => {
                    savepoint(conn, "ROLLBACK TO SAVEPOINT lr_batch").await?;
                    tracing::warn!(projection = projector.name(), error = %e, events = events.len(), "a batch failed for good; applying its events one by one");
                    isolate(conn, projector, events).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
    sqlx::query(
        "UPDATE projection_checkpoints
            SET transaction_id = $2::text::xid8, global_position = $3,
                events_applied = events_applied + $4, updated_at = clock_timestamp()
          WHERE name = $1",
    )
    .bind(projector.name())
    .bind(last.position.transaction_id.to_string())
    .bind(last.position.global_position)
    .bind(events.len() as i64)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn savepoint(conn: &mut PgConnection, statement: &str) -> Result<(), sqlx::Error> {
    sqlx::query(statement).execute(conn).await.map(|_| ())
}

/// Apply `events` one by one; quarantine those that fail for good (and those set aside
/// before), stop at a transient failure.
async fn isolate(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    events: &[LogEvent],
) -> Result<(), ProjectionError> {
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.event_id).collect();
    let set_aside = quarantine::set_aside(conn, projector.name(), &ids).await?;
    for event in events {
        if set_aside.contains(&event.event_id) {
            continue;
        }
        savepoint(conn, "SAVEPOINT lr_event").await?;
        match apply_checked(conn, projector, std::slice::from_ref(event)).await {
            Ok(()) => savepoint(conn, "RELEASE SAVEPOINT lr_event").await?,
            Err(e) if e.is_permanent() => {
                savepoint(conn, "ROLLBACK TO SAVEPOINT lr_event").await?;
                tracing::error!(
                    projection = projector.name(), event_id = %event.event_id,
                    position = %event.position, org_id = ?event.org_id, error = %e,
                    "event quarantined for this projection; see `leadroute projections quarantine`"
                );
                quarantine::record(conn, projector.name(), event, &e.to_string()).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bring a private copy (the tables `search_path` names; nobody else writes them) up to
/// `upto` or the log head, reading the next batch on a second connection while the current
/// one is written. Each batch still moves the copy's checkpoint in its own transaction.
pub async fn catch_up_copy(
    pool: &PgPool,
    projector: &dyn Projector,
    search_path: &str,
    upto: Upto,
) -> Result<usize, ProjectionError> {
    let mut conn = pool.acquire().await?;
    let start = {
        let mut tx = conn.begin().await?;
        use_schema(&mut tx, search_path).await?;
        let checkpoint = lock_checkpoint(&mut tx, projector.name()).await?;
        tx.commit().await?;
        checkpoint
    };
    let (batches, mut received) = tokio::sync::mpsc::channel::<Vec<LogEvent>>(2);
    let reader_pool = pool.clone();
    let reading = projector.reading();
    let reader = tokio::spawn(async move {
        let mut conn = reader_pool.acquire().await?;
        let mut after = start;
        loop {
            let batch = log::read_batch_of(&mut conn, after, upto, BATCH_SIZE, reading).await?;
            let Some(last) = batch.last() else {
                return Ok::<_, ProjectionError>(());
            };
            after = last.position;
            if batches.send(batch).await.is_err() {
                return Ok(());
            }
        }
    });
    let mut total = 0;
    while let Some(batch) = received.recv().await {
        let mut tx = conn.begin().await?;
        use_schema(&mut tx, search_path).await?;
        let checkpoint = lock_checkpoint(&mut tx, projector.name()).await?;
        if batch
            .first()
            .is_some_and(|first| first.position <= checkpoint)
        {
            // Someone else moved this copy: not private after all. Never apply twice.
            reader.abort();
            return Err(ProjectionError::CopyNotPrivate(search_path.to_string()));
        }
        match apply_locked(&mut tx, projector, &batch, Mode::Fast).await {
            Ok(()) => tx.commit().await?,
            Err(e) if e.is_permanent() => {
                drop(tx);
                let mut tx = conn.begin().await?;
                use_schema(&mut tx, search_path).await?;
                lock_checkpoint(&mut tx, projector.name()).await?;
                apply_locked(&mut tx, projector, &batch, Mode::Careful).await?;
                tx.commit().await?;
            }
            Err(e) => {
                reader.abort();
                return Err(e);
            }
        }
        total += batch.len();
    }
    reader
        .await
        .map_err(|e| ProjectionError::Reader(e.to_string()))??;
    Ok(total)
}

/// One batch on the live tables in its own transaction; returns the events applied.
///
/// The transaction commits without waiting for its WAL flush (`synchronous_commit = off`):
/// a read model's rows and checkpoint commit together, so a server crash that loses the
/// last batches' commits only makes them apply again from the log (the publisher then
/// publishes them again, and JetStream drops the repeats by `Nats-Msg-Id`). The event
/// store's own writes keep synchronous commit.
pub async fn step(
    conn: &mut PgConnection,
    projector: &dyn Projector,
    limit: i64,
) -> Result<usize, ProjectionError> {
    for mode in [Mode::Fast, Mode::Careful] {
        let mut tx = conn.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        match step_in(&mut tx, projector, None, limit, mode).await {
            Ok(applied) => {
                tx.commit().await?;
                return Ok(applied);
            }
            // Rolled back; the same batch again, carefully.
            Err(e) if e.is_permanent() && mode == Mode::Fast => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("a careful step ends the loop")
}

/// Apply batches to the live tables until nothing more is readable; returns the events
/// applied.
pub async fn catch_up(
    conn: &mut PgConnection,
    projector: &dyn Projector,
) -> Result<usize, ProjectionError> {
    let mut total = 0;
    loop {
        match step(conn, projector, BATCH_SIZE).await? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// How the runtime waits.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Poll the log this often when no notification arrives.
    pub poll_interval: Duration,
    /// A standby retries the leadership lock this often.
    pub standby_retry: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(500),
            standby_retry: Duration::from_secs(2),
        }
    }
}

/// Run `projector` until `shutdown` completes: wait to become the active instance, then
/// apply batches as events commit. Errors are logged and retried after a pause.
pub async fn run(
    pool: PgPool,
    projector: &dyn Projector,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let outcome = tokio::select! {
            _ = &mut shutdown => return,
            outcome = run_while_active(&pool, projector, options) => outcome,
        };
        if let Err(e) = outcome {
            tracing::error!(projection = projector.name(), error = %e, "projector failed; retrying");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(options.standby_retry) => {}
        }
    }
}

async fn run_while_active(
    pool: &PgPool,
    projector: &dyn Projector,
    options: RunOptions,
) -> Result<(), ProjectionError> {
    let mut leader = pool.acquire().await?.detach();
    while !sqlx::query_scalar::<_, bool>(
        "SELECT pg_try_advisory_lock(hashtextextended('leadroute.projector.' || $1, 0))",
    )
    .bind(projector.name())
    .fetch_one(&mut leader)
    .await?
    {
        tokio::time::sleep(options.standby_retry).await;
    }
    tracing::info!(projection = projector.name(), "active");
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    let mut conn = pool.acquire().await?;
    loop {
        let applied = step(&mut conn, projector, BATCH_SIZE).await?;
        if applied as i64 == BATCH_SIZE {
            continue;
        }
        // Still the leader? (The lock lives as long as this session.)
        leader.ping().await?;
        tokio::select! {
            notification = listener.recv() => {
                notification?;
                let settle = projector.settle();
                if !settle.is_zero() {
                    tokio::time::sleep(settle).await;
                }
                // The next batch reads every commit these announce.
                while listener.next_buffered().is_some() {}
            }
            _ = tokio::time::sleep(options.poll_interval) => {}
        }
    }
}
