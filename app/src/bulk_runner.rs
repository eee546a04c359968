//! The bulk-reassignment runner: runs operations in the background of the process that
//! serves the API (or of `leadroute bulk`), at most one runner per operation across every
//! process (a PostgreSQL session advisory lock, released by the server when the holder
//! dies), and resumes unfinished operations after a restart. The moves themselves are
//! `Commands::run_bulk`'s; this module decides who runs what, and when.

use crate::commands::Commands;
use crate::error::AppError;
use leadroute_domain::bulk::BulkOperation;
use leadroute_domain::ids::{BulkOperationId, OrgId};
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often unfinished operations are looked for.
pub const RESUME_EVERY: Duration = Duration::from_secs(5);

/// Runs bulk operations; cheap to clone.
#[derive(Clone)]
pub struct BulkRunner {
    commands: Commands,
    pool: PgPool,
    running: Arc<Mutex<HashSet<BulkOperationId>>>,
}

impl BulkRunner {
    /// A runner over the event store in `pool`'s database.
    pub fn new(pool: PgPool) -> Self {
        Self::with_commands(Commands::new(pool))
    }

    /// A runner that executes through `commands` (sharing its event store and cache).
    pub fn with_commands(commands: Commands) -> Self {
        Self {
            pool: commands.store().pool().clone(),
            commands,
            running: Arc::default(),
        }
    }

    /// Run `id` in the background (no-op while this process already runs it).
    pub fn spawn(&self, org: OrgId, id: BulkOperationId) {
        let runner = self.clone();
        tokio::spawn(async move {
            if let Err(e) = runner.run(org, id).await {
                tracing::warn!(operation = %id, error = %e, "bulk operation stopped; it resumes later");
            }
        });
    }

    /// Run `id` to its end here, unless another runner (here or in another process) holds
    /// it: then `None` at once.
    pub async fn run(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Option<BulkOperation>, AppError> {
        if !self.running.lock().expect("running set").insert(id) {
            return Ok(None);
        }
        let result = self.run_locked(org, id).await;
        self.running.lock().expect("running set").remove(&id);
        result
    }

    async fn run_locked(
        &self,
        org: OrgId,
        id: BulkOperationId,
    ) -> Result<Option<BulkOperation>, AppError> {
        let store = |e: sqlx::Error| AppError::Store(Box::new(e));
        let mut lock = self.pool.acquire().await.map_err(store)?;
        let key = format!("leadroute.bulk.{id}");
        let (held,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut *lock)
                .await
                .map_err(store)?;
        if !held {
            return Ok(None);
        }
        tracing::info!(operation = %id, "bulk operation running");
        let result = self.commands.run_bulk(org, id).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&key)
            .execute(&mut *lock)
            .await;
        if unlocked.is_err() {
            // Never hand a connection that may still hold the lock back to the pool.
            drop(lock.detach());
        }
        if let Ok(done) = &result {
            tracing::info!(operation = %id, status = done.status.as_str(), moved = done.moved,
                skipped = done.skipped, refused = done.refused, "bulk operation finished");
        }
        result.map(Some)
    }

    /// Run every unfinished operation of every org to its end, one after another; returns
    /// how many this call ran.
    pub async fn resume_all(&self) -> Result<usize, AppError> {
        let mut ran = 0;
        for (org, id) in self.commands.unfinished_bulk_operations().await? {
            if self.run(org, id).await?.is_some() {
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Resume unfinished operations in the background every [`RESUME_EVERY`] until
    /// `shutdown` resolves.
    pub async fn run_until_stopped(self, shutdown: impl std::future::Future<Output = ()>) {
        let resume = async {
            loop {
                match self.commands.unfinished_bulk_operations().await {
                    Ok(unfinished) => {
                        for (org, id) in unfinished {
                            self.spawn(org, id);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot look for unfinished bulk operations")
                    }
                }
                tokio::time::sleep(RESUME_EVERY).await;
            }
        };
        tokio::select! {
            () = resume => {}
            () = shutdown => {}
        }
    }
}
