//! Many commands, on many aggregates, committed in one transaction through the store's one
//! commit path (`leadroute_store::EventStore::commit`): each command is decided against its
//! loaded aggregate, whose state advances at once (so several commands on one aggregate see
//! each other), and its events are queued with the command's metadata. If any aggregate
//! changed since it was loaded, nothing of the batch is written and the caller gets a
//! conflict to retry. A single command is a batch of one (`Commands::commit`).

use super::{lookups::InOrg, AppError, CommandMeta, Commands, Loaded};
use leadroute_domain::Refusal;
use leadroute_store::log::Checkpoint;
use std::collections::HashMap;
use uuid::Uuid;

/// Events decided for several aggregates, not yet written (see `leadroute_store::Batch`).
#[derive(Default)]
pub(crate) struct Batch(leadroute_store::Batch);

impl Batch {
    /// Decide `command` against `loaded`, apply its events to it and queue them; returns the
    /// ids of the events the command produced (none for a no-op). A refusal queues nothing.
    pub(crate) async fn decide<A>(
        &mut self,
        loaded: &mut Loaded<A>,
        command: A::Command,
        meta: &CommandMeta,
    ) -> Result<Vec<Uuid>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        let events = super::decide(loaded, command).await?;
        self.record(
            &loaded.aggregate,
            &loaded.aggregate_id,
            &mut loaded.current_sequence,
            events,
            meta,
        )
    }

    /// Queue `events` already applied to `aggregate` (stored as `id`, at `sequence` before
    /// them, which advances); returns their ids. Refused as a whole when one is too large.
    pub(crate) fn record<A>(
        &mut self,
        aggregate: &A,
        id: &str,
        sequence: &mut usize,
        events: Vec<A::Event>,
        meta: &CommandMeta,
    ) -> Result<Vec<Uuid>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let metadata = super::event_metadata(meta, aggregate.org());
        let metadata =
            serde_json::to_string(&metadata).map_err(|e| AppError::Store(Box::new(e)))?;
        Ok(self.0.record::<A>(id, sequence, events, &metadata)?)
    }

    /// The store's batch.
    pub(crate) fn into_inner(self) -> leadroute_store::Batch {
        self.0
    }
}

impl Commands {
    /// Load every aggregate in `ids` with one query; ids without events come back as new
    /// (default) aggregates. The org is not checked here: callers check it per aggregate.
    pub(crate) async fn load_many<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store.load_many::<A>(ids).await?)
    }

    /// Load every aggregate in `ids` from this process's cached states, reading with one
    /// query only the events committed after each (see `EventStore::load_many_cached`).
    pub(crate) async fn load_many_cached<A>(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AppError>
    where
        A: InOrg,
        A::Error: Refusal + Send + Sync + 'static,
    {
        Ok(self.store.load_many_cached::<A>(ids).await?)
    }

    /// Write every event of `batch` in one transaction; returns how many were written and
    /// the log position of the last. A lost optimistic-concurrency race writes nothing and
    /// is a conflict the caller retries after loading again.
    pub(crate) async fn commit_batch(
        &self,
        batch: Batch,
    ) -> Result<(usize, Option<Checkpoint>), AppError> {
        let n = batch.0.len();
        let position = self
            .store
            .commit(batch.0)
            .await
            .map_err(|e| match AppError::from(e) {
                AppError::Conflict { attempts, .. } => AppError::Conflict {
                    aggregate: "batch",
                    attempts,
                },
                other => other,
            })?;
        Ok((n, position))
    }
}
